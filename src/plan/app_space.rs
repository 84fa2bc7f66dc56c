//! The chart source seen in application versions (`versions: app`): what
//! [`super::app_versions`] translates the source into, and what the rollback planner's
//! messages name versions by. Below both.

use std::collections::BTreeMap;

use super::Available;
use crate::version::ChartVersion;

/// The chart source seen in app versions.
pub(crate) struct AppSpace {
    /// One entry per app version: the app version, with the original spelling as its
    /// `app_version` (for `{to_app_version}`).
    pub(super) offered: Vec<Available>,
    /// App version → the chart version deployed for it.
    pub(super) chart_of: BTreeMap<ChartVersion, ChartVersion>,
    /// App versions packaged by several charts, with all of them (oldest first).
    pub(super) shared: BTreeMap<ChartVersion, Vec<ChartVersion>>,
    pub(super) warnings: Vec<String>,
    /// The app versions of the deployed and the requested chart.
    pub(super) current_app: ChartVersion,
    pub(super) target_app: ChartVersion,
    /// A rollback's newest chart ever deployed, with its app version: named as the chart
    /// the ledger recorded, which need not be the one that stands for its app version.
    pub(super) newest_ever: Option<(ChartVersion, ChartVersion)>,
}

impl AppSpace {
    /// The chart deployed for an app version of this space.
    pub(crate) fn chart(&self, app: &ChartVersion) -> ChartVersion {
        self.chart_of.get(app).cloned().unwrap_or_else(|| app.clone())
    }

    /// The context with the chart of each app version, for `{to_chart_version}` (the
    /// deployed and the requested chart stand for their own app versions already).
    pub(super) fn for_placeholders(&self, context: &super::Context) -> super::Context {
        super::Context { charts_of_apps: self.chart_of.clone(), ..context.clone() }
    }

    /// An app version as a message names it, with the chart helm is told:
    /// `17.1.0 (chart 8.1.2)`.
    pub(crate) fn named(&self, app: &ChartVersion) -> String {
        let recorded = self.newest_ever.as_ref().filter(|(newest, _)| newest == app && *app != self.current_app);
        match recorded.map(|(_, chart)| chart).or_else(|| self.chart_of.get(app)) {
            Some(chart) => format!("{app} (chart {chart})"),
            None => app.to_string(),
        }
    }

    /// The oldest app version a window allows (`floor`, the first of its minor), with the
    /// chart to ask for: the one that packages it, or else the oldest offered in its minor.
    pub(crate) fn floor_named(&self, floor: &ChartVersion) -> String {
        if let Some(chart) = self.chart_of.get(floor) {
            return format!("{floor} (chart {chart})");
        }
        let oldest_of_minor = self.chart_of.iter().find(|(app, _)| *app > floor && app.minor() == floor.minor());
        match oldest_of_minor {
            Some((app, chart)) => format!("{floor} (the oldest offered in {}: {app}, chart {chart})", floor.minor()),
            None => format!("{floor} (no chart offered packages {})", floor.minor()),
        }
    }
}
