//! The dashboard's own config file, `~/.config/stacktop/config.toml`
//! (`$XDG_CONFIG_HOME/stacktop/config.toml` when that is set): today the
//! colour theme.
//!
//! ```toml
//! theme = "light"   # dark (default), light or mono
//! ```
//!
//! `NO_COLOR` in the environment (any non-empty value) wins over the file:
//! the screen is drawn without colour.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// How the screen is coloured (see [`crate::ui::theme`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Theme {
    /// Colours for a dark terminal background.
    #[default]
    Dark,
    /// Colours readable on a light background.
    Light,
    /// No colour at all: states told apart by symbols and bold/reverse.
    Mono,
}

/// The file's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DashboardConfig {
    /// The colour theme; dark when not set.
    pub theme: Option<Theme>,
}

/// Why the config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// It exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It is not valid TOML, or has a key or value it should not.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's words, quoting the bad value.
        message: String,
    },
}

impl DashboardConfig {
    /// Reads `path`; a missing file is the defaults.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        toml::from_str(&text).map_err(|err| ConfigError::Parse {
            path: path.to_path_buf(),
            message: err.to_string(),
        })
    }

    /// The theme to draw with: mono when `no_color` (the `NO_COLOR`
    /// variable is set and not empty), else the file's, else dark.
    pub fn theme(&self, no_color: bool) -> Theme {
        if no_color {
            Theme::Mono
        } else {
            self.theme.unwrap_or_default()
        }
    }
}

/// Where the file is: `$XDG_CONFIG_HOME/stacktop/config.toml`, else
/// `$HOME/.config/stacktop/config.toml`; `None` without either variable.
pub fn default_path() -> Option<PathBuf> {
    let dir = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })?;
    Some(dir.join("stacktop").join("config.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_chooses_the_theme_and_no_color_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        assert_eq!(
            DashboardConfig::load(&path).unwrap().theme(false),
            Theme::Dark
        );
        std::fs::write(&path, "theme = \"light\"\n").unwrap();
        let config = DashboardConfig::load(&path).unwrap();
        assert_eq!(config.theme(false), Theme::Light);
        assert_eq!(config.theme(true), Theme::Mono);
        std::fs::write(&path, "theme = \"pink\"\n").unwrap();
        let err = DashboardConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("pink"), "{err}");
        std::fs::write(&path, "colour = \"dark\"\n").unwrap();
        assert!(DashboardConfig::load(&path).is_err());
    }
}
