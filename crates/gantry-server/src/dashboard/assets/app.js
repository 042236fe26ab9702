// Gantry dashboard: progressive enhancement only; every page works without it.
"use strict";
(function () {
  // Rollout sliders show their value next to them.
  function wireSliders(root) {
    root.querySelectorAll("input[type=range][data-output]").forEach(function (r) {
      var out = document.getElementById(r.dataset.output);
      if (!out) return;
      var show = function () { out.value = r.value + " %"; out.textContent = r.value + " %"; };
      r.addEventListener("input", show);
      show();
    });
  }
  document.addEventListener("DOMContentLoaded", function () { wireSliders(document); });
})();
