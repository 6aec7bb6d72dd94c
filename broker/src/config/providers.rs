//! Kafka's config providers (KIP-297), environment flavour only: `config.providers=env`,
//! `config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider`
//! and `${env:NAME}` references in any value, substituted when the file is loaded. The
//! operator uses this to give each pod its rack from a pod label without one file per pod.
//!
//! Stricter than Kafka where Kafka would keep the `${...}` text as the value: a reference to
//! an undeclared provider or to an unset variable is an error, because a literal
//! `${env:KAFKA_RACK}` rack would silently break rack-aware placement.

use std::collections::{BTreeMap, BTreeSet};
use std::env::VarError;

use super::ConfigError;

/// Lists the provider names.
const PROVIDERS_KEY: &str = "config.providers";
/// Prefix of every key that configures a provider (`config.providers.NAME.class`, ...).
const PROVIDER_KEY_PREFIX: &str = "config.providers.";
/// The one provider class this broker implements.
pub const ENV_PROVIDER_CLASS: &str = "org.apache.kafka.common.config.provider.EnvVarConfigProvider";

/// Reads one environment variable; `std::env::var` in production, a map in tests.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Result<String, VarError>;

/// Returns `props` without the provider keys and with every `${provider:name}` reference
/// replaced by its value.
pub fn resolve(
    props: &BTreeMap<String, String>,
    env: EnvLookup<'_>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let providers = declared_providers(props)?;
    props
        .iter()
        .filter(|(key, _)| !is_provider_key(key))
        .map(|(key, value)| Ok((key.clone(), substitute(key, value, &providers, env)?)))
        .collect()
}

fn is_provider_key(key: &str) -> bool {
    key == PROVIDERS_KEY || key.starts_with(PROVIDER_KEY_PREFIX)
}

/// Names in `config.providers`, each checked to have the env provider class. Any other
/// provider key (a class for an undeclared name, a `param.*`) is refused as unknown, as a
/// typo would otherwise be ignored.
fn declared_providers(props: &BTreeMap<String, String>) -> Result<BTreeSet<String>, ConfigError> {
    let names: BTreeSet<String> = props
        .get(PROVIDERS_KEY)
        .map(|list| super::split_list(list).into_iter().collect())
        .unwrap_or_default();
    for name in &names {
        let class_key = format!("{PROVIDER_KEY_PREFIX}{name}.class");
        match props.get(&class_key).map(String::as_str) {
            Some(ENV_PROVIDER_CLASS) => {}
            Some(other) => {
                return Err(super::invalid(
                    &class_key,
                    other,
                    &format!("the only supported provider class is {ENV_PROVIDER_CLASS}"),
                ))
            }
            None => {
                return Err(super::invalid(
                    PROVIDERS_KEY,
                    &props[PROVIDERS_KEY],
                    &format!("provider `{name}` has no `{class_key}`"),
                ))
            }
        }
    }
    let declared_class = |key: &str| {
        key.strip_prefix(PROVIDER_KEY_PREFIX)
            .and_then(|rest| rest.strip_suffix(".class"))
            .is_some_and(|name| names.contains(name))
    };
    if let Some(key) = props
        .keys()
        .find(|k| k.starts_with(PROVIDER_KEY_PREFIX) && !declared_class(k))
    {
        return Err(ConfigError::UnknownKey(key.clone()));
    }
    Ok(names)
}

/// Replaces each `${provider:[path:]name}` in `value`. Text between `${` and `}` without
/// a `:` is not a reference (as in Kafka) and stays as written.
fn substitute(
    key: &str,
    value: &str,
    providers: &BTreeSet<String>,
    env: EnvLookup<'_>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let body = &rest[start + 2..];
        let Some(end) = body.find('}') else { break };
        let Some((provider, name)) = body[..end].split_once(':') else {
            out.push_str(&rest[..start + 2]);
            rest = body;
            continue;
        };
        if !providers.contains(provider) {
            return Err(ConfigError::UndeclaredProvider {
                key: key.to_string(),
                provider: provider.to_string(),
            });
        }
        // Kafka's EnvVarConfigProvider refuses a path (`${env:path:NAME}`).
        if name.contains(':') {
            return Err(super::invalid(
                key,
                value,
                "the env config provider takes no path: use ${env:NAME}",
            ));
        }
        let resolved = env(name).map_err(|source| ConfigError::UnresolvedVariable {
            key: key.to_string(),
            variable: name.to_string(),
            source,
        })?;
        out.push_str(&rest[..start]);
        out.push_str(&resolved);
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECLARE: &str = "config.providers=env\n\
        config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider\n";

    fn env(name: &str) -> Result<String, VarError> {
        match name {
            "KAFKA_RACK" => Ok("zone-a".into()),
            "HOST" => Ok("pod-0".into()),
            _ => Err(VarError::NotPresent),
        }
    }

    fn run(text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
        resolve(&super::super::parse_properties(text).unwrap(), &env)
    }

    #[test]
    fn references_are_replaced_and_provider_keys_removed() {
        let props = run(&format!(
            "{DECLARE}broker.rack=${{env:KAFKA_RACK}}\n\
             advertised.listeners=CLIENT://${{env:HOST}}.svc:${{env:HOST}}\nnode.id=1\n"
        ))
        .unwrap();
        assert_eq!(
            props,
            BTreeMap::from([
                ("broker.rack".to_string(), "zone-a".to_string()),
                (
                    "advertised.listeners".to_string(),
                    "CLIENT://pod-0.svc:pod-0".to_string()
                ),
                ("node.id".to_string(), "1".to_string()),
            ])
        );
    }

    #[test]
    fn several_names_may_share_the_class() {
        let props = run(&format!(
            "config.providers=env, os\nconfig.providers.env.class={ENV_PROVIDER_CLASS}\n\
             config.providers.os.class={ENV_PROVIDER_CLASS}\nbroker.rack=${{os:KAFKA_RACK}}\n"
        ))
        .unwrap();
        assert_eq!(props["broker.rack"], "zone-a");
    }

    #[test]
    fn text_that_is_not_a_reference_stays() {
        let props = run(&format!("{DECLARE}a=${{plain}} $ {{x}} ${{env:HOST\n")).unwrap();
        assert_eq!(props["a"], "${plain} $ {x} ${env:HOST");
    }

    #[test]
    fn unset_variable_names_key_and_variable() {
        let err = run(&format!("{DECLARE}broker.rack=${{env:NO_SUCH_VAR}}\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`broker.rack` references environment variable `NO_SUCH_VAR`: environment variable not found"
        );
    }

    #[test]
    fn undeclared_provider_is_refused() {
        let err = run("broker.rack=${env:KAFKA_RACK}\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`broker.rack` references config provider `env`, which `config.providers` does not declare"
        );
        let err = run(&format!("{DECLARE}broker.rack=${{file:/etc/x:rack}}\n")).unwrap_err();
        assert!(
            matches!(err, ConfigError::UndeclaredProvider { ref provider, .. } if provider == "file"),
            "{err}"
        );
    }

    #[test]
    fn a_path_is_refused_as_in_kafka() {
        let err = run(&format!("{DECLARE}broker.rack=${{env:/etc:KAFKA_RACK}}\n")).unwrap_err();
        assert!(err.to_string().contains("takes no path"), "{err}");
    }

    #[test]
    fn provider_declarations_are_checked() {
        let err = run("config.providers=env\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("provider `env` has no `config.providers.env.class`"),
            "{err}"
        );
        let err = run(
            "config.providers=file\nconfig.providers.file.class=org.apache.kafka.common.config.provider.FileConfigProvider\n",
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("invalid value `org.apache.kafka.common.config.provider.FileConfigProvider` for `config.providers.file.class`"),
            "{err}"
        );
        let err = run(&format!("{DECLARE}config.providers.evn.class=x\n")).unwrap_err();
        assert!(matches!(err, ConfigError::UnknownKey(k) if k == "config.providers.evn.class"));
        let err = run(&format!(
            "{DECLARE}config.providers.env.param.allowlist.pattern=^KAFKA_\n"
        ))
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::UnknownKey(k) if k == "config.providers.env.param.allowlist.pattern")
        );
    }
}
