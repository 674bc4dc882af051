use pavex::config::ConfigProfile;

/// The configuration profile, from `PX_PROFILE`: which file of `configuration/` is read on top
/// of `base.yml`. Values in `PX_*` environment variables override both (`PX_DATABASE__URL`
/// sets `database.url`).
#[derive(ConfigProfile, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// `dev.yml`: local development over plain HTTP, with a committed, non-secret cookie key.
    Dev,
    /// `prod.yml`: HTTPS only; the cookie key and the database URL come from the environment.
    Prod,
}
