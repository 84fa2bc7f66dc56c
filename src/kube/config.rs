//! Which cluster, as which identity: the configuration helm itself would use.
//!
//! helm hands a plugin its connection settings as environment variables (checked with helm 3 and 4):
//! `KUBECONFIG` (a list of files), `HELM_KUBECONTEXT` (empty for the current context) and
//! one `HELM_KUBE*` variable per global flag (`--kube-apiserver`, `--kube-token`, …). The
//! ledger must be read and written where helm deploys the release, by the same user, or
//! a lock taken on one cluster would not stop a run on another. So this module does what
//! client-go's `clientcmd` does with the same inputs:
//!
//! - the files in `KUBECONFIG` are merged, the first to set a name winning, and files that
//!   do not exist are skipped (`$HOME/.kube/config` when `KUBECONFIG` is unset or empty);
//! - with no configuration at all, `HELM_KUBEAPISERVER` alone, or the in-cluster service
//!   account, is used;
//! - the overrides are applied to the chosen context's cluster and user with clientcmd's
//!   rules (a CA file or `insecure-skip-tls-verify=true` replaces the kubeconfig's CA and
//!   TLS setting; a server override drops the kubeconfig's `tls-server-name` unless one is
//!   given; a token replaces every other credential);
//! - proxies come from `HTTPS_PROXY`/`HTTP_PROXY` and `NO_PROXY` as Go reads them (never
//!   for localhost or loopback addresses).
//!
//! Everything is read from an [`Environment`], the process's in production and a map in
//! tests, so a test never has to change the process-wide environment. Exec credential
//! plugins, token files and their refresh are left to kube's kubeconfig support.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ::kube::config::{
    AuthInfo, Cluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};
use secrecy::SecretString;

use super::KubeError;
use crate::env;

/// Where a pod's service account credentials are mounted (client-go's in-cluster config).
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The context name of a configuration made from the overrides or the service account
/// alone, when no kubeconfig exists. Only this module sees it.
const SYNTHETIC_CONTEXT: &str = "helm-safe-upgrade";

/// The environment variables configuration is read from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Environment {
    vars: BTreeMap<String, String>,
}

impl Environment {
    /// This process's environment (values that are not UTF-8 are read lossily).
    pub fn from_process() -> Environment {
        Environment {
            vars: std::env::vars_os()
                .map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned()))
                .collect(),
        }
    }

    /// An environment holding exactly these variables.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Environment {
        Environment { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// Set (or replace) one variable.
    pub fn set(&mut self, name: &str, value: &str) {
        self.vars.insert(name.to_string(), value.to_string());
    }

    /// A variable's value, None when unset or empty: helm exports every `HELM_KUBE*`
    /// variable, empty for a flag not given, so empty means "not given".
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// How helm stores release revisions (`HELM_DRIVER`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum HelmDriver {
    /// Secrets `sh.helm.release.v1.<release>.v<N>` (helm's default).
    #[default]
    Secret,
    /// ConfigMaps of the same names and labels.
    ConfigMap,
    /// `sql`, `memory` or a name helm does not know: nothing this client can read.
    Other(String),
}

impl HelmDriver {
    /// helm's names for the drivers (`secret`/`secrets`, `configmap`/`configmaps`; unset or
    /// empty is `secret`).
    pub fn from_env(env: &Environment) -> HelmDriver {
        match env.get(env::HELM_DRIVER) {
            None | Some("secret") | Some("secrets") => HelmDriver::Secret,
            Some("configmap") | Some("configmaps") => HelmDriver::ConfigMap,
            Some(other) => HelmDriver::Other(other.to_string()),
        }
    }
}

/// helm's connection settings as helm passes them to a plugin.
#[derive(Clone, Debug, Default)]
pub struct HelmKubeSettings {
    /// `KUBECONFIG`, split like a `PATH`; empty when unset (then `$HOME/.kube/config`).
    pub kubeconfig: Vec<PathBuf>,
    /// `$HOME/.kube/config`, when `HOME` is set.
    pub default_kubeconfig: Option<PathBuf>,
    /// `HELM_KUBECONTEXT`: None means the kubeconfig's current context.
    pub context: Option<String>,
    /// `HELM_KUBEAPISERVER` (`--kube-apiserver`).
    pub api_server: Option<String>,
    /// `HELM_KUBETOKEN` (`--kube-token`); never printed.
    pub token: Option<SecretString>,
    /// `HELM_KUBEASUSER` (`--kube-as-user`).
    pub as_user: Option<String>,
    /// `HELM_KUBEASGROUPS` (`--kube-as-group`), each group once: helm exports the list
    /// doubled (`g1,g1`) because it parses the flag twice.
    pub as_groups: Vec<String>,
    /// `HELM_KUBECAFILE` (`--kube-ca-file`).
    pub ca_file: Option<String>,
    /// `HELM_KUBEINSECURE_SKIP_TLS_VERIFY` (`--kube-insecure-skip-tls-verify`).
    pub insecure_skip_tls_verify: bool,
    /// `HELM_KUBETLS_SERVER_NAME` (`--kube-tls-server-name`).
    pub tls_server_name: Option<String>,
    /// `HELM_DRIVER`.
    pub driver: HelmDriver,
}

impl HelmKubeSettings {
    pub fn from_env(env: &Environment) -> HelmKubeSettings {
        let owned = |name: &str| env.get(name).map(str::to_string);
        HelmKubeSettings {
            kubeconfig: env
                .get("KUBECONFIG")
                .map(|list| std::env::split_paths(list).filter(|p| !p.as_os_str().is_empty()).collect())
                .unwrap_or_default(),
            default_kubeconfig: env.get(env::HOME).map(|home| Path::new(home).join(".kube").join("config")),
            context: owned(env::HELM_KUBECONTEXT),
            api_server: owned(env::HELM_KUBEAPISERVER),
            token: owned(env::HELM_KUBETOKEN).map(SecretString::from),
            as_user: owned(env::HELM_KUBEASUSER),
            as_groups: env.get(env::HELM_KUBEASGROUPS).map(groups).unwrap_or_default(),
            ca_file: owned(env::HELM_KUBECAFILE),
            insecure_skip_tls_verify: env.get(env::HELM_KUBEINSECURE_SKIP_TLS_VERIFY).is_some_and(go_bool),
            tls_server_name: owned(env::HELM_KUBETLS_SERVER_NAME),
            driver: HelmDriver::from_env(env),
        }
    }
}

/// A comma list of groups, each kept once in first-seen order.
fn groups(list: &str) -> Vec<String> {
    let mut seen = Vec::<String>::new();
    for group in list.split(',').map(str::trim).filter(|g| !g.is_empty()) {
        if !seen.iter().any(|s| s == group) {
            seen.push(group.to_string());
        }
    }
    seen
}

/// Go's `strconv.ParseBool` true values (helm writes `true`/`false`).
fn go_bool(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

/// The kube client configuration for `settings`, in the context `context` (an explicit
/// one wins over `HELM_KUBECONTEXT`), talking to namespace `namespace` by default.
///
/// Async only because kube's loader is; it reads files (a CA bundle, a client
/// certificate) and waits on nothing else.
pub async fn client_config(
    env: &Environment,
    settings: &HelmKubeSettings,
    context: Option<&str>,
    namespace: &str,
) -> Result<::kube::Config, KubeError> {
    let context = context.filter(|c| !c.is_empty()).map(str::to_string).or_else(|| settings.context.clone());
    let merged = load_kubeconfig(settings)?;
    let (mut cluster, mut user, context_name) = choose(merged, context, settings, env)?;
    apply_overrides(&mut cluster, &mut user, settings);
    let single = Kubeconfig {
        clusters: vec![NamedCluster {
            name: SYNTHETIC_CONTEXT.into(),
            cluster: Some(cluster.clone()),
            ..NamedCluster::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: SYNTHETIC_CONTEXT.into(),
            auth_info: Some(user),
            ..NamedAuthInfo::default()
        }],
        contexts: vec![NamedContext {
            name: SYNTHETIC_CONTEXT.into(),
            context: Some(Context {
                cluster: SYNTHETIC_CONTEXT.into(),
                user: Some(SYNTHETIC_CONTEXT.into()),
                namespace: Some(namespace.to_string()),
                ..Context::default()
            }),
            ..NamedContext::default()
        }],
        current_context: Some(SYNTHETIC_CONTEXT.into()),
        ..Kubeconfig::default()
    };
    let options = KubeConfigOptions { context: Some(SYNTHETIC_CONTEXT.into()), ..KubeConfigOptions::default() };
    let mut config = ::kube::Config::from_custom_kubeconfig(single, &options)
        .await
        .map_err(|e| KubeError::config(&context_name, e.to_string()))?;
    config.default_namespace = namespace.to_string();
    // kube reads proxies from the process environment for https only; helm (Go) picks them
    // by the server's scheme and skips loopback addresses. Decide here, from `env`.
    config.proxy_url = proxy_for(&config.cluster_url, cluster.proxy_url.as_deref(), env)
        .map_err(|e| KubeError::config(&context_name, e))?;
    Ok(config)
}

/// The merged kubeconfig, or None when there is none at all.
fn load_kubeconfig(settings: &HelmKubeSettings) -> Result<Option<Kubeconfig>, KubeError> {
    let paths: Vec<PathBuf> = if settings.kubeconfig.is_empty() {
        settings.default_kubeconfig.iter().cloned().collect()
    } else {
        settings.kubeconfig.clone()
    };
    let mut merged: Option<Kubeconfig> = None;
    for path in paths {
        // clientcmd skips files of the list that do not exist; any other failure is fatal.
        if !path.exists() {
            continue;
        }
        let config = Kubeconfig::read_from(&path)
            .map_err(|e| KubeError::config(&path.display().to_string(), format!("cannot read it: {e}")))?;
        merged = Some(match merged {
            None => config,
            Some(first) => first
                .merge(config)
                .map_err(|e| KubeError::config(&path.display().to_string(), format!("cannot merge it: {e}")))?,
        });
    }
    Ok(merged)
}

/// The cluster and user of the context to use, and the context's name for messages.
fn choose(
    merged: Option<Kubeconfig>,
    context: Option<String>,
    settings: &HelmKubeSettings,
    env: &Environment,
) -> Result<(Cluster, AuthInfo, String), KubeError> {
    let merged = merged.filter(|m| !m.contexts.is_empty() || !m.clusters.is_empty() || context.is_some());
    let Some(merged) = merged else {
        // No kubeconfig: clientcmd uses the overrides alone when they name a server, and
        // the pod's service account otherwise.
        if settings.api_server.is_some() {
            return Ok((Cluster::default(), AuthInfo::default(), "--kube-apiserver".into()));
        }
        return in_cluster(env).map(|(cluster, user)| (cluster, user, "in-cluster".into())).ok_or_else(|| {
            KubeError::config(
                "KUBECONFIG",
                "no kubeconfig was found (KUBECONFIG, $HOME/.kube/config) and this is not a pod with a service account"
                    .into(),
            )
        });
    };
    let name = context.or_else(|| merged.current_context.clone().filter(|c| !c.is_empty())).ok_or_else(|| {
        KubeError::config("KUBECONFIG", "the kubeconfig sets no current-context and none was given".into())
    })?;
    let chosen = merged
        .contexts
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.context.clone())
        .ok_or_else(|| KubeError::config(&name, "no context of this name in the kubeconfig".into()))?;
    let cluster = merged.clusters.iter().find(|c| c.name == chosen.cluster).and_then(|c| c.cluster.clone());
    let cluster = match cluster {
        Some(cluster) => cluster,
        None if settings.api_server.is_some() => Cluster::default(),
        None => {
            return Err(KubeError::config(&name, format!("its cluster {:?} is not in the kubeconfig", chosen.cluster)));
        }
    };
    // A user the kubeconfig does not define is anonymous, as in client-go.
    let user = chosen
        .user
        .as_ref()
        .and_then(|u| merged.auth_infos.iter().find(|a| &a.name == u))
        .and_then(|a| a.auth_info.clone())
        .unwrap_or_default();
    Ok((cluster, user, name))
}

/// client-go's in-cluster configuration, from `env` and the mounted service account.
fn in_cluster(env: &Environment) -> Option<(Cluster, AuthInfo)> {
    let (host, port) = (env.get(env::KUBERNETES_SERVICE_HOST)?, env.get("KUBERNETES_SERVICE_PORT")?);
    let token = Path::new(SERVICE_ACCOUNT_DIR).join("token");
    if !token.is_file() {
        return None;
    }
    let host = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
    let cluster = Cluster {
        server: Some(format!("https://{host}:{port}")),
        certificate_authority: Some(format!("{SERVICE_ACCOUNT_DIR}/ca.crt")),
        ..Cluster::default()
    };
    // A token file, which kube re-reads as the kubelet rotates it.
    let user = AuthInfo { token_file: Some(token.to_string_lossy().into_owned()), ..AuthInfo::default() };
    Some((cluster, user))
}

/// helm's global flags over the kubeconfig's cluster and user, with clientcmd's rules.
pub fn apply_overrides(cluster: &mut Cluster, user: &mut AuthInfo, settings: &HelmKubeSettings) {
    if let Some(server) = &settings.api_server {
        cluster.server = Some(server.clone());
    }
    // A CA file or insecure=true replaces the kubeconfig's CA and TLS setting together, so
    // a kubeconfig CA cannot survive next to --kube-insecure-skip-tls-verify.
    if settings.ca_file.is_some() || settings.insecure_skip_tls_verify {
        cluster.insecure_skip_tls_verify = Some(settings.insecure_skip_tls_verify);
        cluster.certificate_authority = settings.ca_file.clone();
        cluster.certificate_authority_data = None;
    }
    // A new server makes the kubeconfig's tls-server-name meaningless: only the flag's stays.
    if settings.tls_server_name.is_some() || settings.api_server.is_some() {
        cluster.tls_server_name = settings.tls_server_name.clone();
    }
    if let Some(token) = &settings.token {
        // client-go sends the given token and runs no exec plugin or auth provider then;
        // kube would prefer an auth provider or basic auth over a token, so drop them.
        user.token = Some(token.clone());
        user.token_file = None;
        user.exec = None;
        user.auth_provider = None;
        user.username = None;
        user.password = None;
    }
    if let Some(as_user) = &settings.as_user {
        user.impersonate = Some(as_user.clone());
    }
    if !settings.as_groups.is_empty() {
        user.impersonate_groups = Some(settings.as_groups.clone());
    }
}

/// The proxy Go's `http.ProxyFromEnvironment` would pick for `server`: the cluster's
/// `proxy-url`, else `HTTPS_PROXY` (https) or `HTTP_PROXY` (http) unless `NO_PROXY`
/// matches; never for localhost or a loopback address.
fn proxy_for(server: &http::Uri, cluster_proxy: Option<&str>, env: &Environment) -> Result<Option<http::Uri>, String> {
    let parse = |text: &str| text.parse::<http::Uri>().map(Some).map_err(|e| format!("proxy URL {text:?}: {e}"));
    if let Some(proxy) = cluster_proxy.filter(|p| !p.is_empty()) {
        return parse(proxy);
    }
    let host = server.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
        return Ok(None);
    }
    let https = server.scheme_str() != Some("http");
    let names: [&str; 2] = if https { [env::HTTPS_PROXY, "https_proxy"] } else { [env::HTTP_PROXY, "http_proxy"] };
    let Some(proxy) = names.iter().find_map(|n| env.get(n)) else { return Ok(None) };
    let no_proxy = env.get(env::NO_PROXY).or_else(|| env.get("no_proxy")).unwrap_or_default();
    let port = server.port_u16().unwrap_or(if https { 443 } else { 80 });
    if no_proxy_matches(no_proxy, host, port) {
        return Ok(None);
    }
    // Go accepts a proxy without a scheme and takes it as http://.
    if proxy.contains("://") { parse(proxy) } else { parse(&format!("http://{proxy}")) }
}

/// Go's `NO_PROXY` rules: `*`; an IP or CIDR; a host name, matching itself and its
/// subdomains (`.example.com` only subdomains); each optionally with `:port`.
fn no_proxy_matches(no_proxy: &str, host: &str, port: u16) -> bool {
    let host = host.to_ascii_lowercase();
    let ip = host.parse::<std::net::IpAddr>().ok();
    no_proxy.split(',').map(str::trim).filter(|e| !e.is_empty()).any(|entry| {
        if entry == "*" {
            return true;
        }
        if let Some((net, bits)) = entry.split_once('/') {
            return match (ip, net.parse::<std::net::IpAddr>(), bits.parse::<u32>()) {
                (Some(ip), Ok(net), Ok(bits)) => in_cidr(ip, net, bits),
                _ => false,
            };
        }
        let (name, entry_port) = match entry.rsplit_once(':') {
            Some((name, p)) if !name.contains(':') || name.starts_with('[') => (name, p.parse::<u16>().ok()),
            _ => (entry, None),
        };
        if entry_port.is_some_and(|p| p != port) {
            return false;
        }
        let name = name.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        if let (Some(ip), Ok(entry_ip)) = (ip, name.parse::<std::net::IpAddr>()) {
            return ip == entry_ip;
        }
        match name.strip_prefix('.') {
            Some(suffix) => host.ends_with(&format!(".{suffix}")),
            None => host == name || host.ends_with(&format!(".{name}")),
        }
    })
}

fn in_cidr(ip: std::net::IpAddr, net: std::net::IpAddr, bits: u32) -> bool {
    use std::net::IpAddr;
    let prefix = |a: u128, b: u128, width: u32| {
        if bits > width {
            return false;
        }
        let shift = width - bits;
        (bits == 0) || (a >> shift) == (b >> shift)
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => prefix(u32::from(a).into(), u32::from(b).into(), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => prefix(u128::from(a), u128::from(b), 128),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Environment {
        Environment::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn helm_variables_map_to_settings() {
        let settings = HelmKubeSettings::from_env(&env(&[
            ("KUBECONFIG", "/a/config::/b/config"),
            ("HOME", "/home/ana"),
            ("HELM_KUBECONTEXT", ""),
            ("HELM_KUBEAPISERVER", "https://api.example:6443"),
            ("HELM_KUBETOKEN", "sekret"),
            ("HELM_KUBEASUSER", "ana"),
            ("HELM_KUBEASGROUPS", "g1,g2,g1,g2"),
            ("HELM_KUBECAFILE", "/ca.pem"),
            ("HELM_KUBEINSECURE_SKIP_TLS_VERIFY", "false"),
            ("HELM_KUBETLS_SERVER_NAME", "api.internal"),
            ("HELM_DRIVER", "configmap"),
        ]));
        assert_eq!(settings.kubeconfig, vec![PathBuf::from("/a/config"), PathBuf::from("/b/config")]);
        assert_eq!(settings.default_kubeconfig, Some(PathBuf::from("/home/ana/.kube/config")));
        assert_eq!(settings.context, None, "an empty HELM_KUBECONTEXT means the current context");
        assert_eq!(settings.api_server.as_deref(), Some("https://api.example:6443"));
        assert_eq!(settings.as_user.as_deref(), Some("ana"));
        assert_eq!(settings.as_groups, vec!["g1", "g2"], "helm's doubled list, each group once");
        assert_eq!(settings.ca_file.as_deref(), Some("/ca.pem"));
        assert!(!settings.insecure_skip_tls_verify);
        assert_eq!(settings.tls_server_name.as_deref(), Some("api.internal"));
        assert_eq!(settings.driver, HelmDriver::ConfigMap);
        assert!(!format!("{settings:?}").contains("sekret"), "the token is never printed");
    }

    #[test]
    fn drivers_are_named_as_helm_names_them() {
        for (value, driver) in [
            ("", HelmDriver::Secret),
            ("secrets", HelmDriver::Secret),
            ("configmaps", HelmDriver::ConfigMap),
            ("sql", HelmDriver::Other("sql".into())),
            ("memory", HelmDriver::Other("memory".into())),
        ] {
            assert_eq!(HelmDriver::from_env(&env(&[("HELM_DRIVER", value)])), driver, "{value:?}");
        }
    }

    fn kubeconfig_cluster() -> Cluster {
        Cluster {
            server: Some("https://kubeconfig:6443".into()),
            certificate_authority_data: Some("Q0E=".into()),
            tls_server_name: Some("kubeconfig.internal".into()),
            ..Cluster::default()
        }
    }

    #[test]
    fn a_server_override_drops_the_kubeconfigs_tls_server_name() {
        let (mut cluster, mut user) = (kubeconfig_cluster(), AuthInfo::default());
        let settings = HelmKubeSettings { api_server: Some("https://other:6443".into()), ..Default::default() };
        apply_overrides(&mut cluster, &mut user, &settings);
        assert_eq!(cluster.server.as_deref(), Some("https://other:6443"));
        assert_eq!(cluster.tls_server_name, None);
        assert_eq!(cluster.certificate_authority_data.as_deref(), Some("Q0E="), "the CA stays");
    }

    #[test]
    fn insecure_or_a_ca_file_replaces_the_kubeconfigs_ca() {
        let (mut cluster, mut user) = (kubeconfig_cluster(), AuthInfo::default());
        let settings = HelmKubeSettings { insecure_skip_tls_verify: true, ..Default::default() };
        apply_overrides(&mut cluster, &mut user, &settings);
        assert_eq!(cluster.insecure_skip_tls_verify, Some(true));
        assert_eq!((cluster.certificate_authority_data, cluster.certificate_authority), (None, None));
        assert_eq!(cluster.tls_server_name.as_deref(), Some("kubeconfig.internal"), "no server override");

        let mut cluster = kubeconfig_cluster();
        let settings = HelmKubeSettings { ca_file: Some("/ca.pem".into()), ..Default::default() };
        apply_overrides(&mut cluster, &mut user, &settings);
        assert_eq!(cluster.certificate_authority.as_deref(), Some("/ca.pem"));
        assert_eq!(cluster.certificate_authority_data, None);
        assert_eq!(cluster.insecure_skip_tls_verify, Some(false));
    }

    #[test]
    fn a_token_replaces_every_other_credential_and_impersonation_is_added() {
        use secrecy::ExposeSecret;
        let mut cluster = kubeconfig_cluster();
        let mut user = AuthInfo {
            token_file: Some("/token".into()),
            exec: Some(::kube::config::ExecConfig { command: Some("aws".into()), ..Default::default() }),
            ..AuthInfo::default()
        };
        let settings = HelmKubeSettings {
            token: Some(SecretString::from("t0ken")),
            as_user: Some("ana".into()),
            as_groups: vec!["ops".into()],
            ..Default::default()
        };
        apply_overrides(&mut cluster, &mut user, &settings);
        assert_eq!(user.token.as_ref().map(|t| t.expose_secret().to_string()).as_deref(), Some("t0ken"));
        assert!(user.exec.is_none() && user.token_file.is_none());
        assert_eq!(user.impersonate.as_deref(), Some("ana"));
        assert_eq!(user.impersonate_groups, Some(vec!["ops".to_string()]));
    }

    #[test]
    fn without_overrides_an_exec_plugin_is_kept() {
        let mut cluster = kubeconfig_cluster();
        let mut user = AuthInfo {
            exec: Some(::kube::config::ExecConfig { command: Some("aws".into()), ..Default::default() }),
            ..AuthInfo::default()
        };
        apply_overrides(&mut cluster, &mut user, &HelmKubeSettings::default());
        assert!(user.exec.is_some());
        assert_eq!(cluster.server.as_deref(), Some("https://kubeconfig:6443"));
        assert_eq!(cluster.tls_server_name.as_deref(), Some("kubeconfig.internal"));
        assert_eq!(cluster.certificate_authority_data.as_deref(), Some("Q0E="));
    }

    #[test]
    fn proxies_are_picked_as_go_picks_them() {
        let uri = |s: &str| s.parse::<http::Uri>().unwrap();
        let e =
            env(&[("HTTPS_PROXY", "proxy:3128"), ("HTTP_PROXY", "http://plain:80"), ("NO_PROXY", ".corp,10.0.0.0/8")]);
        let pick = |server: &str| proxy_for(&uri(server), None, &e).unwrap().map(|u| u.to_string());
        assert_eq!(pick("https://api.example:6443").as_deref(), Some("http://proxy:3128/"));
        assert_eq!(pick("http://api.example").as_deref(), Some("http://plain:80/"));
        assert_eq!(pick("https://api.corp"), None);
        assert_eq!(pick("https://10.1.2.3:6443"), None);
        assert_eq!(pick("https://127.0.0.1:6443"), None, "loopback is never proxied");
        assert_eq!(pick("https://localhost:6443"), None);
        assert_eq!(pick("https://[::1]:6443"), None);
        let kubeconfig = proxy_for(&uri("https://api.corp"), Some("socks5://s:1080"), &e).unwrap();
        assert_eq!(kubeconfig.map(|u| u.to_string()).as_deref(), Some("socks5://s:1080/"));
        assert!(no_proxy_matches("*", "anything", 1));
        assert!(no_proxy_matches("example.com", "api.example.com", 443));
        assert!(!no_proxy_matches("example.com:80", "example.com", 443));
        assert!(no_proxy_matches("example.com:443", "example.com", 443));
    }
}
