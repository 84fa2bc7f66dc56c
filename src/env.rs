//! Every environment variable the tool reads, in one table, with what it means.
//!
//! Nothing else in the tool calls `std::env::var` for its own settings: a variable that
//! is not here is not read. The README's table is checked against [`VARIABLES`] by a
//! test, so the documentation cannot drift from the code. (Variables read by libraries on
//! our behalf, such as `KUBECONFIG` for the Kubernetes client, are listed too.)

use std::path::PathBuf;

/// A variable: its name, who sets it, and what it means to the tool.
pub struct Variable {
    pub name: &'static str,
    pub meaning: &'static str,
}

pub const HELM_PLUGIN_NAME: &str = "HELM_PLUGIN_NAME";
pub const HELM_BIN: &str = "HELM_BIN";
pub const HELM_NAMESPACE: &str = "HELM_NAMESPACE";
pub const HELM_KUBECONTEXT: &str = "HELM_KUBECONTEXT";
pub const HELM_DEBUG: &str = "HELM_DEBUG";
pub const HELM_KUBEAPISERVER: &str = "HELM_KUBEAPISERVER";
pub const HELM_KUBETOKEN: &str = "HELM_KUBETOKEN";
pub const HELM_KUBEASUSER: &str = "HELM_KUBEASUSER";
pub const HELM_KUBEASGROUPS: &str = "HELM_KUBEASGROUPS";
pub const HELM_KUBECAFILE: &str = "HELM_KUBECAFILE";
pub const HELM_KUBEINSECURE_SKIP_TLS_VERIFY: &str = "HELM_KUBEINSECURE_SKIP_TLS_VERIFY";
pub const HELM_KUBETLS_SERVER_NAME: &str = "HELM_KUBETLS_SERVER_NAME";
pub const HELM_DRIVER: &str = "HELM_DRIVER";
pub const HELM_REGISTRY_CONFIG: &str = "HELM_REGISTRY_CONFIG";
pub const HELM_CONFIG_HOME: &str = "HELM_CONFIG_HOME";
pub const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
pub const HELM_REPOSITORY_CACHE: &str = "HELM_REPOSITORY_CACHE";
pub const HELM_CACHE_HOME: &str = "HELM_CACHE_HOME";
pub const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";
pub const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
pub const PATH: &str = "PATH";
pub const KUBECONFIG: &str = "KUBECONFIG";
pub const HTTPS_PROXY: &str = "HTTPS_PROXY";
pub const HTTP_PROXY: &str = "HTTP_PROXY";
pub const NO_PROXY: &str = "NO_PROXY";
pub const KUBERNETES_SERVICE_HOST: &str = "KUBERNETES_SERVICE_HOST";
pub const XDG_STATE_HOME: &str = "XDG_STATE_HOME";
pub const HOME: &str = "HOME";
pub const USER: &str = "USER";
pub const CI: &str = "CI";
pub const NO_COLOR: &str = "NO_COLOR";
pub const HELM_COLOR: &str = "HELM_COLOR";
pub const TERM: &str = "TERM";
pub const COLUMNS: &str = "COLUMNS";
pub const GOGC: &str = "GOGC";
pub const GOMEMLIMIT: &str = "GOMEMLIMIT";

/// The table, in the order the README shows it.
pub const VARIABLES: &[Variable] = &[
    Variable {
        name: HELM_PLUGIN_NAME,
        meaning: "set by helm: `safe-rollback` makes the binary the rollback command, anything else the upgrade command",
    },
    Variable { name: HELM_BIN, meaning: "set by helm: the helm binary to run (default: `helm` on PATH)" },
    Variable {
        name: HELM_NAMESPACE,
        meaning: "set by helm from `-n`: the release's namespace (the tool's own `-n` when run directly)",
    },
    Variable { name: HELM_KUBECONTEXT, meaning: "set by helm from `--kube-context`: the Kubernetes context" },
    Variable {
        name: HELM_DEBUG,
        meaning: "set by helm from `--debug`: echo every command run (--set values only on your terminal)",
    },
    Variable {
        name: HELM_KUBEAPISERVER,
        meaning: "set by helm from `--kube-apiserver`: the API server, over the kubeconfig's (also for the tool's own requests)",
    },
    Variable {
        name: HELM_KUBETOKEN,
        meaning: "set by helm from `--kube-token`: the bearer token, over the kubeconfig's user",
    },
    Variable { name: HELM_KUBEASUSER, meaning: "set by helm from `--kube-as-user`: the user to impersonate" },
    Variable {
        name: HELM_KUBEASGROUPS,
        meaning: "set by helm from `--kube-as-group`: the groups to impersonate (comma-separated)",
    },
    Variable {
        name: HELM_KUBECAFILE,
        meaning: "set by helm from `--kube-ca-file`: the CA that signs the API server's certificate",
    },
    Variable {
        name: HELM_KUBEINSECURE_SKIP_TLS_VERIFY,
        meaning: "set by helm from `--kube-insecure-skip-tls-verify`: do not verify the API server's certificate",
    },
    Variable {
        name: HELM_KUBETLS_SERVER_NAME,
        meaning: "set by helm from `--kube-tls-server-name`: the name the API server's certificate is checked against",
    },
    Variable {
        name: HELM_DRIVER,
        meaning: "where helm keeps releases: `secret` (default) or `configmap` are read directly; `sql` and `memory` through helm",
    },
    Variable { name: HELM_REGISTRY_CONFIG, meaning: "set by helm: the registry credentials file, for `oci://` charts" },
    Variable {
        name: HELM_CONFIG_HOME,
        meaning: "set by helm: where its registry config lives when HELM_REGISTRY_CONFIG is not set",
    },
    Variable { name: XDG_CONFIG_HOME, meaning: "the config folder, for helm's registry config by default" },
    Variable {
        name: HELM_REPOSITORY_CACHE,
        meaning: "set by helm: where its repository indexes are cached, read to see whether a chart version ships a policy before fetching it, and for each version's digest (a kept archive is taken only if it matches)",
    },
    Variable {
        name: HELM_CACHE_HOME,
        meaning: "helm's cache folder, for the repository cache when HELM_REPOSITORY_CACHE is not set",
    },
    Variable {
        name: XDG_CACHE_HOME,
        meaning: "the cache folder: the chart archives kept between runs (`helm-safe-upgrade/charts`, else under `~/.cache`), and helm's cache by default",
    },
    Variable { name: DOCKER_CONFIG, meaning: "docker's config folder, the fallback for registry credentials" },
    Variable {
        name: PATH,
        meaning: "where helm, the policy's commands, the notify hook, docker credential helpers and kubeconfig exec plugins are found",
    },
    Variable {
        name: KUBECONFIG,
        meaning: "the kubeconfig files (`:`-separated, first wins), read as helm reads them for the tool's own API requests",
    },
    Variable {
        name: HTTPS_PROXY,
        meaning: "the proxy for an `https://` API server (also `https_proxy`), as helm uses it",
    },
    Variable { name: HTTP_PROXY, meaning: "the proxy for an `http://` API server (also `http_proxy`)" },
    Variable { name: NO_PROXY, meaning: "hosts reached without the proxy (also `no_proxy`); loopback never uses one" },
    Variable {
        name: KUBERNETES_SERVICE_HOST,
        meaning: "inside a pod without a kubeconfig: the API server of the pod's cluster (with `KUBERNETES_SERVICE_PORT`)",
    },
    Variable {
        name: XDG_STATE_HOME,
        meaning: "where the local state lives: backups and a local ledger (default `~/.local/state`)",
    },
    Variable { name: HOME, meaning: "the home folder, for the defaults above" },
    Variable { name: USER, meaning: "the user named in a lock's holder (`user@host pid N`)" },
    Variable {
        name: CI,
        meaning: "set (and not `false`): a CI job; no spinners, no prompts (a run without `--yes` is refused), no colour unless asked for",
    },
    Variable {
        name: NO_COLOR,
        meaning: "set (any value but empty): no colour (https://no-color.org); `--color` wins over it",
    },
    Variable {
        name: HELM_COLOR,
        meaning: "`never`, `always` or `auto`: helm 4's colour setting, followed when neither `--color` nor NO_COLOR is given (helm passes it on from your environment; it does not set it)",
    },
    Variable { name: TERM, meaning: "`dumb`: a terminal that shows escape codes as text; no colour unless asked for" },
    Variable {
        name: COLUMNS,
        meaning: "the width to fit on a terminal (default: the terminal's own; at least 80); output that is not a terminal is never wrapped",
    },
    Variable {
        name: GOGC,
        meaning: "Go's garbage collector setting; when neither it nor GOMEMLIMIT is set, the preflight's helm renders run with `GOGC=off GOMEMLIMIT=128MiB` (see Benchmark), set yours to have them run with it",
    },
    Variable { name: GOMEMLIMIT, meaning: "Go's soft memory limit; see GOGC" },
];

/// A variable's value, when it is set and not empty.
pub fn get(name: &str) -> Option<String> {
    debug_assert!(VARIABLES.iter().any(|v| v.name == name), "{name} is not in env::VARIABLES");
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A variable's value as a path, when set and not empty.
pub fn path(name: &str) -> Option<PathBuf> {
    debug_assert!(VARIABLES.iter().any(|v| v.name == name), "{name} is not in env::VARIABLES");
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// `CI` is set to anything but `false`: the run is a CI job.
pub fn in_ci() -> bool {
    std::env::var_os(CI).is_some_and(|v| !v.is_empty() && v != "false")
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_variable_is_named_once_and_explained() {
        let mut names: Vec<&str> = super::VARIABLES.iter().map(|v| v.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), super::VARIABLES.len());
        assert!(super::VARIABLES.iter().all(|v| !v.meaning.is_empty()));
    }
}
