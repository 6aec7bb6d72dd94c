//! `meta.properties`: the stamp `broker storage format` leaves in every log
//! directory, so a node never starts on an unformatted or foreign directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::{parse_properties, BrokerConfig};

pub const FILE_NAME: &str = "meta.properties";

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("{dir}: not formatted (no meta.properties). Run: broker storage format -t <cluster-id> -c <config>  (get an id with: broker storage random-uuid)")]
    NotFormatted { dir: PathBuf },
    #[error("{dir}: already formatted for cluster {cluster_id}; pass --ignore-formatted to leave it as it is")]
    AlreadyFormatted { dir: PathBuf, cluster_id: String },
    #[error("{dir}: meta.properties is for node {found}, but node.id is {expected}")]
    NodeMismatch {
        dir: PathBuf,
        found: i32,
        expected: i32,
    },
    #[error("log directories belong to different clusters: {first} and {second}")]
    ClusterMismatch { first: String, second: String },
    #[error("{dir}: meta.properties is unreadable: {reason}")]
    Corrupt { dir: PathBuf, reason: String },
    #[error("invalid cluster id `{0}`: expected 22 characters of URL-safe base64, as printed by `broker storage random-uuid`")]
    BadClusterId(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    pub cluster_id: String,
    pub node_id: i32,
    pub directory_id: String,
}

/// A new id in Kafka's form: 16 random bytes as URL-safe base64 without
/// padding, never starting with `-` (it would read as a command-line flag).
pub fn random_uuid() -> String {
    loop {
        let id = base64_url(uuid::Uuid::new_v4().as_bytes());
        if !id.starts_with('-') {
            return id;
        }
    }
}

/// Kafka's text form of an id: URL-safe base64 without padding.
pub fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 1);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The bytes of [`base64_url`]'s text; None for anything it could not have written.
pub fn from_base64_url(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    };
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= (value(*c)? as u32) << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

fn valid_cluster_id(id: &str) -> bool {
    id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Every directory this node writes to: the log dirs and the metadata dir.
fn all_dirs(config: &BrokerConfig) -> Vec<PathBuf> {
    let mut dirs = config.log_dirs.clone();
    if !dirs.iter().any(|d| d == config.metadata_dir()) {
        dirs.push(config.metadata_dir().to_owned());
    }
    dirs
}

/// Writes meta.properties into every directory; returns the ones formatted.
pub fn format(
    config: &BrokerConfig,
    cluster_id: &str,
    ignore_formatted: bool,
) -> Result<Vec<PathBuf>, FormatError> {
    if !valid_cluster_id(cluster_id) {
        return Err(FormatError::BadClusterId(cluster_id.to_string()));
    }
    let mut formatted = Vec::new();
    for dir in all_dirs(config) {
        if let Some(existing) = read(&dir)? {
            if ignore_formatted {
                continue;
            }
            return Err(FormatError::AlreadyFormatted {
                dir,
                cluster_id: existing.cluster_id,
            });
        }
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| FormatError::Io { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let text = format!(
            "#\n# Written by broker storage format\ncluster.id={cluster_id}\ndirectory.id={}\nnode.id={}\nversion=1\n",
            random_uuid(),
            config.node_id
        );
        let path = dir.join(FILE_NAME);
        let tmp = dir.join(format!("{FILE_NAME}.tmp"));
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        formatted.push(dir);
    }
    Ok(formatted)
}

/// Checks every directory is formatted for this node and one cluster.
pub fn load(config: &BrokerConfig) -> Result<MetaProperties, FormatError> {
    let mut found: Option<MetaProperties> = None;
    for dir in all_dirs(config) {
        let meta = read(&dir)?.ok_or_else(|| FormatError::NotFormatted { dir: dir.clone() })?;
        if meta.node_id != config.node_id {
            return Err(FormatError::NodeMismatch {
                dir,
                found: meta.node_id,
                expected: config.node_id,
            });
        }
        match &found {
            Some(first) if first.cluster_id != meta.cluster_id => {
                return Err(FormatError::ClusterMismatch {
                    first: first.cluster_id.clone(),
                    second: meta.cluster_id,
                })
            }
            Some(_) => {}
            None => found = Some(meta),
        }
    }
    Ok(found.expect("a config always has at least one log dir"))
}

/// Reads one directory's meta.properties, `None` when there is none.
pub fn read(dir: &Path) -> Result<Option<MetaProperties>, FormatError> {
    let path = dir.join(FILE_NAME);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(FormatError::Io { path, source }),
    };
    let corrupt = |reason: String| FormatError::Corrupt {
        dir: dir.to_owned(),
        reason,
    };
    let props: BTreeMap<String, String> =
        parse_properties(&text).map_err(|e| corrupt(e.to_string()))?;
    let get = |key: &str| {
        props
            .get(key)
            .cloned()
            .ok_or_else(|| corrupt(format!("missing {key}")))
    };
    Ok(Some(MetaProperties {
        cluster_id: get("cluster.id")?,
        node_id: get("node.id")?
            .parse()
            .map_err(|_| corrupt("node.id is not a number".into()))?,
        directory_id: get("directory.id").unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dirs: &[&Path], node: i32) -> BrokerConfig {
        BrokerConfig {
            node_id: node,
            log_dirs: dirs.iter().map(|d| d.to_path_buf()).collect(),
            ..BrokerConfig::default()
        }
    }

    #[test]
    fn random_ids_look_like_kafkas() {
        let id = random_uuid();
        assert!(valid_cluster_id(&id), "{id}");
        assert_ne!(id, random_uuid());
        assert_eq!(base64_url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn base64_text_decodes_to_the_bytes_it_came_from() {
        for len in 0..20 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 251) as u8).collect();
            assert_eq!(from_base64_url(&base64_url(&bytes)), Some(bytes));
        }
        assert_eq!(from_base64_url("-_8"), Some(vec![0xfb, 0xff]));
        assert_eq!(from_base64_url("ab+c"), None, "not the URL-safe alphabet");
        assert_eq!(from_base64_url("abcde"), None, "no byte ends there");
    }

    #[test]
    fn format_then_load() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let config = config(&[a.path(), b.path()], 4);
        assert!(matches!(
            load(&config),
            Err(FormatError::NotFormatted { .. })
        ));
        let id = random_uuid();
        assert_eq!(format(&config, &id, false).unwrap().len(), 2);
        let meta = load(&config).unwrap();
        assert_eq!((meta.cluster_id.as_str(), meta.node_id), (id.as_str(), 4));
        assert!(matches!(
            format(&config, &id, false),
            Err(FormatError::AlreadyFormatted { .. })
        ));
        assert!(format(&config, &id, true).unwrap().is_empty());
    }

    #[test]
    fn mismatches_are_refused() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        format(&config(&[a.path()], 1), &random_uuid(), false).unwrap();
        format(&config(&[b.path()], 1), &random_uuid(), false).unwrap();
        assert!(matches!(
            load(&config(&[a.path()], 2)),
            Err(FormatError::NodeMismatch { .. })
        ));
        assert!(matches!(
            load(&config(&[a.path(), b.path()], 1)),
            Err(FormatError::ClusterMismatch { .. })
        ));
        assert!(matches!(
            format(&config(&[a.path()], 1), "short", false),
            Err(FormatError::BadClusterId(_))
        ));
    }
}
