//! A tiny HTML builder whose default is escaping.
//!
//! [`html!`](crate::html) takes a literal template with positional `{}`
//! holes and fills each hole through [`Render`]: text (`str`, `String`,
//! numbers) is HTML-escaped, only values that are already [`Html`] go in
//! as markup. The template is split at run time, not by `format!`, so a
//! `{name}` in a template can never capture a variable unescaped.

use std::fmt::Write as _;

/// Markup that is safe to send as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Html(String);

impl Html {
    /// Empty markup.
    pub fn new() -> Self {
        Html(String::new())
    }

    /// Trusted markup from a string literal (never user data).
    pub fn lit(s: &'static str) -> Self {
        Html(s.to_owned())
    }

    /// Appends markup.
    pub fn push(&mut self, h: Html) {
        if self.0.is_empty() {
            self.0 = h.0;
        } else {
            self.0.push_str(&h.0);
        }
    }

    /// The markup as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The markup.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Fills `template`'s `{}` holes with `args`, each rendered (escaped unless it is [`Html`]).
    pub fn build(template: &'static str, args: &[&dyn Render]) -> Html {
        let mut out = String::with_capacity(template.len() + 16 * args.len());
        let mut parts = template.split("{}");
        if let Some(first) = parts.next() {
            out.push_str(first);
        }
        let mut args = args.iter();
        for part in parts {
            match args.next() {
                Some(a) => a.render(&mut out),
                None => debug_assert!(false, "html!: more holes than arguments in {template:?}"),
            }
            out.push_str(part);
        }
        debug_assert!(args.next().is_none(), "html!: more arguments than holes in {template:?}");
        Html(out)
    }
}

impl FromIterator<Html> for Html {
    fn from_iter<I: IntoIterator<Item = Html>>(iter: I) -> Self {
        let mut out = Html::new();
        for h in iter {
            out.push(h);
        }
        out
    }
}

/// Builds [`Html`] from a literal template with `{}` holes.
#[macro_export]
#[doc(hidden)]
macro_rules! html {
    ($tpl:literal) => { $crate::dashboard::html::Html::lit($tpl) };
    ($tpl:literal, $($arg:expr),+ $(,)?) => {
        $crate::dashboard::html::Html::build($tpl, &[$(&$arg as &dyn $crate::dashboard::html::Render),+])
    };
}

/// Something that can go into a template hole.
pub trait Render {
    /// Appends the rendering.
    fn render(&self, out: &mut String);
}

/// Appends `s` HTML-escaped (safe in text and in quoted attributes).
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

impl Render for str {
    fn render(&self, out: &mut String) {
        escape_into(out, self);
    }
}

impl Render for String {
    fn render(&self, out: &mut String) {
        escape_into(out, self);
    }
}

impl<T: Render + ?Sized> Render for &T {
    fn render(&self, out: &mut String) {
        (**self).render(out);
    }
}

impl<T: Render> Render for Option<T> {
    fn render(&self, out: &mut String) {
        if let Some(v) = self {
            v.render(out);
        }
    }
}

impl Render for Html {
    fn render(&self, out: &mut String) {
        out.push_str(&self.0);
    }
}

macro_rules! render_display {
    ($($t:ty),*) => {$(
        impl Render for $t {
            fn render(&self, out: &mut String) {
                let _ = write!(out, "{}", self);
            }
        }
    )*};
}
render_display!(u16, u32, u64, usize, i32, i64);

/// A path segment, percent-encoded (then safe in an attribute as well).
#[derive(Debug, Clone, Copy)]
pub struct Seg<'a>(pub &'a str);

impl Render for Seg<'_> {
    fn render(&self, out: &mut String) {
        for b in self.0.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                out.push(b as char);
            } else {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
}

/// A query-string value, percent-encoded.
#[derive(Debug, Clone, Copy)]
pub struct Q<'a>(pub &'a str);

impl Render for Q<'_> {
    fn render(&self, out: &mut String) {
        Seg(self.0).render(out);
    }
}

/// Markup if `cond`, else nothing.
pub fn when(cond: bool, h: Html) -> Html {
    if cond {
        h
    } else {
        Html::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_are_escaped_and_markup_is_not() {
        let user = "<script>alert('x')</script>&\"";
        let inner = html!("<b>{}</b>", "ok");
        let h = html!("<p title=\"{}\">{} {}</p>", user, user, inner);
        assert_eq!(
            h.as_str(),
            "<p title=\"&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;\">&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot; <b>ok</b></p>"
        );
    }

    #[test]
    fn named_braces_are_not_captured() {
        let name = "<b>";
        let h = html!("<i>{name}</i>");
        assert_eq!(h.as_str(), "<i>{name}</i>");
        let _ = name;
    }

    #[test]
    fn segments_are_percent_encoded() {
        let h = html!("<a href=\"/ui/flags/{}\">x</a>", Seg("a b/<c>&😊"));
        assert_eq!(h.as_str(), "<a href=\"/ui/flags/a%20b%2F%3Cc%3E%26%F0%9F%98%8A\">x</a>");
    }
}
