//! Validation of names and keys at the edge.

use gantry_engine::model::{Flag, FlagKind, Segment};
use gantry_engine::{CompileOptions, FlagSet, Plan};

/// One problem with an input, with the JSON path of the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// JSON path.
    pub field: String,
    /// Explanation.
    pub message: String,
}

impl Invalid {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Flag keys: 1 to 100 characters; letters of any script, digits, emoji and
/// punctuation, but no whitespace, control characters or `/ ? # % \ " '`
/// (they break URLs and some SDKs).
pub fn flag_key(key: &str) -> Result<(), String> {
    let n = key.chars().count();
    if n == 0 || n > 100 {
        return Err("a flag key has 1 to 100 characters".into());
    }
    if let Some(c) = key.chars().find(|c| c.is_control() || c.is_whitespace() || "/?#%\\\"'".contains(*c)) {
        return Err(format!("a flag key may not contain {c:?}"));
    }
    Ok(())
}

/// Environment names: `[a-z0-9][a-z0-9_-]{0,62}`.
pub fn environment_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err("an environment name is 1 to 63 lower-case letters, digits, '-' or '_', starting with a letter or digit".into())
    }
}

/// Validates a flag definition against the known environments and segments:
/// structure, names, weights, and that it compiles in every environment.
pub fn flag(flag: &Flag, environments: &[String], segments: &[Segment]) -> Vec<Invalid> {
    let mut out = Vec::new();
    if let Err(e) = flag_key(&flag.key) {
        out.push(Invalid::new("key", e));
    }
    if flag.description.as_ref().is_some_and(|d| d.len() > 10_000) {
        out.push(Invalid::new("description", "at most 10,000 bytes"));
    }
    let mut names = std::collections::HashSet::new();
    for (i, v) in flag.variants.iter().enumerate() {
        if v.name.trim().is_empty() || v.name.len() > 100 {
            out.push(Invalid::new(format!("variants[{i}].name"), "1 to 100 characters"));
        }
        if !names.insert(v.name.as_str()) {
            out.push(Invalid::new(format!("variants[{i}].name"), "duplicate variant name"));
        }
        if v.weight > 1_000_000 {
            out.push(Invalid::new(format!("variants[{i}].weight"), "at most 1,000,000"));
        }
    }
    if flag.kind != FlagKind::Boolean && flag.variants.is_empty() {
        out.push(Invalid::new("variants", "a non-boolean flag needs at least one variant"));
    }
    for env in flag.environments.keys() {
        if !environments.iter().any(|e| e == env) {
            out.push(Invalid::new(format!("environments.{env}"), "no such environment"));
        }
    }
    // Everything else the engine checks when compiling: report it as invalid input.
    let set = FlagSet { flags: vec![flag.clone()], segments: segments.to_vec() };
    for env in flag.environments.keys() {
        let plan = Plan::compile(&set, &CompileOptions::for_environment(env.clone()));
        for d in plan.diagnostics() {
            out.push(Invalid::new(format!("environments.{env}"), d.message.clone()));
        }
    }
    out
}

/// Validates a segment.
pub fn segment(seg: &Segment) -> Vec<Invalid> {
    let mut out = Vec::new();
    if seg.id == 0 {
        out.push(Invalid::new("id", "segment ids start at 1"));
    }
    // Compile the constraints through a throwaway flag to reuse the engine's checks.
    let probe = Flag {
        key: "probe".into(),
        environments: [(
            "e".to_owned(),
            gantry_engine::model::EnvironmentConfig {
                enabled: true,
                rules: vec![gantry_engine::model::Rule { segments: vec![seg.id], ..Default::default() }],
                ..Default::default()
            },
        )]
        .into(),
        ..Default::default()
    };
    let plan = Plan::compile(&FlagSet { flags: vec![probe], segments: vec![seg.clone()] }, &CompileOptions::for_environment("e"));
    for d in plan.diagnostics() {
        out.push(Invalid::new("constraints", d.message.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_keys() {
        for ok in ["a", "new-checkout", "Feature.UTF-8.Hellø_Wørld", "Feature.UTF-8.😊_φriend_你好_🌍", "ns:flag~2"] {
            assert!(flag_key(ok).is_ok(), "{ok}");
        }
        let long = "x".repeat(101);
        for bad in ["", "a b", "a/b", "a?b", "tab\t", "q\"", long.as_str()] {
            assert!(flag_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn environment_names() {
        for ok in ["production", "dev-1", "qa_2", "0"] {
            assert!(environment_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Prod", "-x", "a b", "ä"] {
            assert!(environment_name(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn flag_key_never_panics(s in ".*") {
            let _ = flag_key(&s);
            let _ = environment_name(&s);
        }
    }
}
