//! Per-caller upstream values (`${claim:NAME}`, `${secret:NAME}` in an upstream's `env`,
//! `args` or `headers`) and the credentials file the secrets come from.
//!
//! The file is TOML, one table per caller:
//!
//! ```toml
//! [subjects."248289761001"]   # a JWT's `sub`
//! token = "…"
//! [tokens.alice]              # a static token's name in [auth.tokens]
//! token = "…"
//! ```
//!
//! It must not be accessible to other users (no `o` permission bits): the load refuses it
//! otherwise. No error about it ever quotes its contents.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use mcpgw_core::upstream::credentials::{PerCaller, Secret, SecretSet, Secrets, Slot, Template};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecrets {
    #[serde(default)]
    subjects: HashMap<String, HashMap<String, String>>,
    #[serde(default)]
    tokens: HashMap<String, HashMap<String, String>>,
}

/// Reads the credentials file at `path` (named `at` in errors).
pub(crate) fn load(path: &Path, at: &str) -> Result<Secrets, String> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{at}: {shown}: {e}"))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o007 != 0 {
        return Err(format!(
            "{at}: {shown} is accessible to other users (mode {mode:03o}); it holds secrets: make it readable only by \
             the service (chmod o-rwx, for example 0600 or 0640)"
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{at}: {shown}: {e}"))?;
    // toml's own message quotes the line it failed on, and that line may hold a secret.
    let raw: RawSecrets = toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        let line = line.map(|l| format!(" (line {l})")).unwrap_or_default();
        format!(
            "{at}: {shown}{line}: not a credentials file: [subjects.\"SUB\"] and [tokens.NAME] tables of string secrets"
        )
    })?;
    let sets = |raw: HashMap<String, HashMap<String, String>>| -> HashMap<String, SecretSet> {
        raw.into_iter()
            .map(|(who, set)| (who, set.into_iter().map(|(name, value)| (name, Secret::new(value))).collect()))
            .collect()
    };
    Ok(Secrets { subjects: sets(raw.subjects), tokens: sets(raw.tokens) })
}

/// Collects the per-caller templates of one upstream's values, replacing each value that
/// takes nothing from the caller by its literal text (`$${` unescaped).
pub(crate) struct Collect {
    templates: Vec<(Slot, Template)>,
}

impl Collect {
    pub(crate) fn new() -> Self {
        Self { templates: Vec::new() }
    }

    fn value(&mut self, slot: Slot, value: &mut String, at: &str) -> Result<(), String> {
        let template = Template::parse(value).map_err(|e| format!("{at}: {e}"))?;
        if template.is_per_caller() {
            self.templates.push((slot, template));
        } else {
            *value = template.literal();
        }
        Ok(())
    }

    /// Each value of `map` (environment variables, headers), at `at.NAME`.
    pub(crate) fn map(
        &mut self,
        map: &mut BTreeMap<String, String>,
        slot: fn(String) -> Slot,
        at: &str,
    ) -> Result<(), String> {
        for (name, value) in map.iter_mut() {
            self.value(slot(name.clone()), value, &format!("{at}.{name}"))?;
        }
        Ok(())
    }

    /// Each argument, at `at[i]`.
    pub(crate) fn args(&mut self, args: &mut [String], at: &str) -> Result<(), String> {
        for (i, arg) in args.iter_mut().enumerate() {
            self.value(Slot::Arg(i), arg, &format!("{at}[{i}]"))?;
        }
        Ok(())
    }

    /// What the upstream takes from each caller (`None`: nothing), with the secrets in
    /// `credentials` (the file's path, under `at`).
    pub(crate) fn finish(self, credentials: Option<&Path>, at: &str) -> Result<Option<Arc<PerCaller>>, String> {
        let uses_secrets = self.templates.iter().any(|(_, t)| t.uses_secrets());
        let secrets = match credentials {
            Some(path) => Some(Arc::new(load(path, at)?)),
            None if uses_secrets => {
                return Err(format!("{at} is required: a value of this upstream uses ${{secret:…}}"));
            }
            None => None,
        };
        if self.templates.is_empty() {
            return match secrets {
                Some(_) => Err(format!("{at} is set but no value of this upstream uses ${{secret:…}}")),
                None => Ok(None),
            };
        }
        Ok(Some(Arc::new(PerCaller { templates: self.templates, secrets })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str, mode: u32) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("mcpgw-credentials-{name}-{}", std::process::id()));
        std::fs::write(&path, text).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[test]
    fn a_credentials_file_open_to_other_users_is_refused_and_errors_never_quote_it() {
        let text = "[subjects.\"u-1\"]\ntoken = \"s3cret\"\n[tokens.alice]\ntoken = \"s3cret-a\"\n";
        let open = file("open", text, 0o644);
        let e = load(&open, "upstreams.gh.credentials").expect_err("world-readable");
        assert!(e.contains("accessible to other users (mode 644)"), "{e}");
        let _ = std::fs::remove_file(&open);

        let private = file("private", text, 0o600);
        let secrets = load(&private, "x").expect("loads");
        assert_eq!(secrets.tokens["alice"]["token"], Secret::new("s3cret-a"));
        assert_eq!(secrets.subjects["u-1"]["token"], Secret::new("s3cret"));
        let _ = std::fs::remove_file(&private);

        let bad = file("bad", "[tokens.alice]\ntoken = \"s3cret-b\"\nother = [\"s3cret-c\"]\n", 0o600);
        let e = load(&bad, "x").expect_err("not strings");
        assert!(e.contains("line 3") && !e.contains("s3cret"), "{e}");
        let _ = std::fs::remove_file(&bad);
    }

    #[test]
    fn per_caller_values_are_checked_at_load() {
        let parse = |upstream: &str| crate::config::Config::parse(&format!("[upstreams.u]\n{upstream}"), "f");
        let stdio = "kind = \"stdio\"\ncommand = \"x\"\n";
        let err = |upstream: &str| parse(upstream).err().map(|e| e.to_string()).unwrap_or_default();

        let e = err(&format!("{stdio}env = {{ A = \"${{HOME}}\" }}\n"));
        assert!(e.contains("upstreams.u.env.A") && e.contains("unknown placeholder ${HOME}"), "{e}");
        let e = err(&format!("{stdio}env = {{ A = \"${{secret:token}}\" }}\n"));
        assert!(e.contains("upstreams.u.credentials is required"), "{e}");
        let e = err(&format!("{stdio}share = \"shared\"\nargs = [\"--user=${{claim:login}}\"]\n"));
        assert!(e.contains("needs share = \"session\""), "{e}");
        let e = err(&format!("{stdio}credentials = \"/nonexistent\"\n"));
        assert!(e.contains("upstreams.u.credentials"), "{e}");

        let config = parse(&format!("{stdio}args = [\"a$${{b}}\", \"--user=${{claim:login}}\"]\n")).expect("valid");
        let spec = &config.upstreams[0];
        let mcpgw_core::UpstreamKind::Stdio { args, .. } = &spec.kind else { panic!("stdio") };
        assert_eq!(args[0], "a${b}", "a literal is unescaped once, at load");
        let per_caller = spec.per_caller.as_ref().expect("per caller");
        assert_eq!(per_caller.templates.len(), 1);
        assert_eq!(per_caller.templates[0].0, Slot::Arg(1));
    }
}
