//! CREATE / JOIN / ALTER / DELETE / SET CLUSTER with searchd's checks and error texts.

use super::error::{ExecError, ExecResult};
use super::result::Output;
use crate::cluster;
use crate::cost::Op;
use crate::node::Node;
use crate::sql::ast::{ClusterStmt, Literal};
use crate::store::catalog::Catalog;
use crate::store::mutation::Mutation;

const OK: Output = Output::Ok { affected: 0 };

pub async fn execute(node: &Node, stmt: &ClusterStmt) -> ExecResult<Output> {
    let result = match stmt {
        ClusterStmt::Create { name, path } => create(node, name, path.as_deref()).await,
        ClusterStmt::Join { name, at, path } => join(node, name, at, path.as_deref()).await,
        ClusterStmt::AlterAdd { name, tables } => add(node, name, tables).await,
        ClusterStmt::AlterDrop { name, tables } => drop_tables(node, name, tables).await,
        ClusterStmt::AlterUpdateNodes { name } => update_nodes(node, name).await,
        ClusterStmt::Delete { name } => delete(node, name).await,
        ClusterStmt::Set { name, var, value } => set(node, name, var, value).await,
    };
    result.map(|()| OK).map_err(ExecError::new)
}

/// The directory a cluster keeps its state in; `Err` is searchd's complaint (without the
/// `failed to create desc: ` prefix CREATE adds).
fn check_path(node: &Node, catalog: &Catalog, name: &str, path: &str) -> Result<(), String> {
    if !path.is_empty() {
        let dir = node.config.data_dir.join(path);
        if !dir.is_dir() {
            let shown = dir.display();
            return Err(format!(
                "cluster '{name}', cannot access directory {shown}, cannot access {shown}"
            ));
        }
    }
    if let Some(other) = catalog.clusters().find(|c| c.path == path) {
        return Err(format!(
            "duplicate paths, cluster '{name}' has the same path as '{}'",
            other.name
        ));
    }
    Ok(())
}

async fn create(node: &Node, name: &str, path: Option<&str>) -> Result<(), String> {
    let path = path.unwrap_or("");
    {
        let catalog = node.catalog();
        if catalog.cluster(name).is_some() {
            return Err(format!(
                "failed to create desc: cluster '{name}' already exists"
            ));
        }
        check_path(node, &catalog, name, path)
            .map_err(|e| format!("failed to create desc: {e}"))?;
    }
    node.config.sim.profile.charge(Op::CreateCluster).await;
    cluster::create(node, name, path)
}

async fn join(node: &Node, name: &str, at: &str, path: Option<&str>) -> Result<(), String> {
    {
        let catalog = node.catalog();
        if catalog.cluster(name).is_some() {
            return Err(format!("cluster '{name}' already exists"));
        }
        check_path(node, &catalog, name, path.unwrap_or(""))?;
    }
    let donors: Vec<String> = at
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect();
    cluster::join(node, name, path.unwrap_or(""), &donors).await
}

async fn add(node: &Node, name: &str, tables: &[String]) -> Result<(), String> {
    let batch = {
        let catalog = node.catalog();
        let mut picked = Vec::new();
        for t in tables {
            let table = catalog
                .get(t)
                .filter(|t| t.is_rt())
                .ok_or_else(|| format!("unknown or wrong type of table '{t}'"))?;
            if let Some(c) = &table.cluster {
                return Err(format!(
                    "table '{}' is already part of cluster '{c}'",
                    table.name
                ));
            }
            picked.push(table.clone());
        }
        if catalog.cluster(name).is_none() {
            return Err(format!("unknown cluster '{name}'"));
        }
        // One statement's tables join the list sorted, as searchd lists them.
        picked.sort_by(|a, b| a.name.cmp(&b.name));
        picked
            .into_iter()
            .map(|table| Mutation::ClusterAttach {
                cluster: name.to_string(),
                table: Box::new(table),
                origin: node.clusters.me().to_string(),
            })
            .collect::<Vec<_>>()
    };
    cluster::submit(node, name, batch, Vec::new())
        .await
        .map(|_| ())
        .map_err(String::from)
}

async fn drop_tables(node: &Node, name: &str, tables: &[String]) -> Result<(), String> {
    let batch = {
        let catalog = node.catalog();
        let meta = catalog
            .cluster(name)
            .ok_or_else(|| format!("unknown cluster '{name}'"))?;
        let mut batch = Vec::new();
        for t in tables {
            let member = meta
                .tables
                .iter()
                .find(|m| Catalog::key(m) == Catalog::key(t))
                .ok_or_else(|| format!("table '{t}' is not in cluster '{name}'"))?;
            batch.push(Mutation::ClusterDetach {
                cluster: name.to_string(),
                table: member.clone(),
            });
        }
        batch
    };
    cluster::submit(node, name, batch, Vec::new())
        .await
        .map(|_| ())
        .map_err(String::from)
}

/// `ALTER CLUSTER <c> UPDATE nodes`: the member list becomes the current view.
async fn update_nodes(node: &Node, name: &str) -> Result<(), String> {
    let batch = {
        let catalog = node.catalog();
        let meta = catalog
            .cluster(name)
            .ok_or_else(|| format!("unknown cluster '{name}'"))?;
        vec![Mutation::ClusterView {
            cluster: name.to_string(),
            view: meta.view.clone(),
            nodes_set: meta.view.member_ids().map(str::to_string).collect(),
        }]
    };
    cluster::submit(node, name, batch, Vec::new())
        .await
        .map(|_| ())
        .map_err(String::from)
}

async fn delete(node: &Node, name: &str) -> Result<(), String> {
    if node.catalog().cluster(name).is_none() {
        return Err(format!("unknown cluster '{name}'"));
    }
    cluster::delete(node, name).await
}

async fn set(node: &Node, name: &str, var: &str, value: &Literal) -> Result<(), String> {
    if node.catalog().cluster(name).is_none() {
        return Err(format!("unknown cluster '{name}' in SET statement"));
    }
    let on = matches!(value, Literal::Int(1) | Literal::UInt(1))
        || matches!(value, Literal::Str(s) if s == "1" || s.eq_ignore_ascii_case("yes") || s.eq_ignore_ascii_case("true"));
    if var.eq_ignore_ascii_case("pc.bootstrap") && on {
        return cluster::bootstrap(node, name).await;
    }
    // Other provider options are accepted and have no effect in the simulator.
    Ok(())
}
