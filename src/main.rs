//! Wiring only: parse the command line, set up logging, and start the
//! controller and the HTTP endpoints until SIGTERM.
#![forbid(unsafe_code)]

use std::{process::ExitCode, sync::Arc};

use clap::Parser;
use futures::{FutureExt, StreamExt, future::BoxFuture};
use loginprofile_operator::{
    api::sample::{ROOT_SAMPLE, SAMPLE},
    aws::clients::{AccountSettings, Accounts, aws_connector},
    aws::deletion_pacer::DeletionLimit,
    aws::iam::{self, IamClientConfig},
    cli::{Cli, Command, RunArgs, SampleKind},
    controller::{self, Context, EventSettings, Settings},
    ops::fingerprint_key,
    ops::http,
    ops::leader::{self, LeaseSettings, WritePermit},
    ops::metrics::Metrics,
    ops::telemetry,
    rules::password::Fingerprinter,
};

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Crd => {
            let crds: Vec<String> = loginprofile_operator::api::installed_crds()
                .iter()
                .map(|crd| serde_yaml::to_string(crd).expect("the CRD serializes"))
                .collect();
            print!("{}", crds.join("---\n"));
            ExitCode::SUCCESS
        }
        Command::Reference => {
            print!("{}", loginprofile_operator::reference::markdown());
            ExitCode::SUCCESS
        }
        Command::Sample { kind } => {
            print!(
                "{}",
                match kind {
                    SampleKind::LoginProfile => SAMPLE,
                    SampleKind::Root => ROOT_SAMPLE,
                }
            );
            ExitCode::SUCCESS
        }
        Command::Run(args) => match run(*args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                tracing::error!("{message}");
                eprintln!("loginprofile-operator: {message}");
                ExitCode::FAILURE
            }
        },
    }
}

/// The in-cluster or KUBECONFIG client, named by its User-Agent so the API
/// server's audit log and metrics tell this operator's requests apart.
async fn kubernetes_client() -> Result<kube::Client, Box<dyn std::error::Error>> {
    let mut config = kube::Config::infer().await?;
    config.headers.push((
        axum::http::header::USER_AGENT,
        axum::http::HeaderValue::from_static(concat!(
            "loginprofile-operator/",
            env!("CARGO_PKG_VERSION")
        )),
    ));
    Ok(kube::Client::try_from(config)?)
}

async fn run(args: RunArgs) -> Result<(), String> {
    args.check()?;
    telemetry::init(args.log_format, &args.log_filter)?;
    let client = kubernetes_client().await.map_err(|e| {
        format!("cannot configure the Kubernetes client (in-cluster or KUBECONFIG): {e}")
    })?;
    let keys = fingerprint_key::load(
        &client,
        args.fingerprint_key_file.as_deref(),
        &args.fingerprint_old_key_files,
        args.operator_namespace.as_deref(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let metrics = Arc::new(Metrics::default());
    // Every IAM writer shares one permit: with leader election it opens
    // once the Lease is held and lapses at the renew deadline.
    let permit = if args.leader_elect {
        WritePermit::for_election()
    } else {
        WritePermit::default()
    };
    let aws_settings = IamClientConfig {
        max_attempts: args.iam_max_attempts,
        timeout: args.iam_timeout,
        rate_limit: args.iam_rate_limit,
    };
    let accounts = Accounts::new(
        aws_connector(
            iam::sdk_config(&aws_settings).await,
            metrics.clone(),
            permit.clone(),
        ),
        AccountSettings {
            rate_limit: args.iam_rate_limit,
            drift_check_rate: args
                .drift_check_rate
                .unwrap_or(f64::from(args.iam_rate_limit.get()) / 2.0),
            password_policy_refresh: args.password_policy_refresh,
            credential_report_interval: args.credential_report_interval,
            deletion_limit: DeletionLimit {
                per_window: std::num::NonZeroU32::new(args.deletion_limit),
                window: args.deletion_window,
            },
        },
    );
    let settings = Settings {
        resync_period: args.resync_period,
        write_deadline: args.iam_timeout,
        concurrency: args.concurrency,
        namespaces: args.namespaces.clone(),
        min_backoff: args.min_backoff,
        max_backoff: args.max_backoff,
        secrets_manager_poll_interval: args.secrets_manager_poll_interval,
        default_deletion_policy: args.default_deletion_policy,
        cluster_id: args.cluster_id.clone(),
        report_console_activity: args.report_console_activity,
        root_login_profiles: args
            .manage_root_login_profiles
            .then(|| args.root_login_profile_selector.clone()),
        events: EventSettings {
            drift_period: args.drift_period_with_events.max(args.resync_period),
            deadline: args.event_deadline,
            heartbeat_period: args.event_heartbeat_period,
        },
    };
    let mut ctx = Context::new(
        client.clone(),
        accounts,
        Fingerprinter::new(keys.current, keys.older),
        metrics.clone(),
        settings,
    );

    // Shut down on SIGTERM, or when leadership is lost (then exit non-zero,
    // so Kubernetes restarts this replica as a standby).
    let lost_leadership = Arc::new(tokio::sync::Notify::new());
    let shutdown: BoxFuture<'static, ()> = {
        let lost = lost_leadership.clone();
        Box::pin(async move {
            tokio::select! {
                () = shutdown_signal() => {}
                () = lost.notified() => {}
            }
        })
    };
    let shutdown = shutdown.shared();
    let health = http::Health::default();
    let listener = http::bind(args.http_addr)
        .await
        .map_err(|e| format!("cannot listen on --http-addr {}: {e}", args.http_addr))?;
    let server = tokio::spawn(http::serve(
        listener,
        health.clone(),
        metrics,
        shutdown.clone(),
    ));

    let (permit, leading) = if args.leader_elect {
        let settings = LeaseSettings {
            namespace: args
                .leader_election_namespace
                .clone()
                .or_else(|| args.operator_namespace.clone())
                .ok_or("--leader-elect needs --leader-election-namespace or --operator-namespace (POD_NAMESPACE)")?,
            name: args.leader_election_lease.clone(),
            identity: std::env::var("POD_NAME")
                .unwrap_or_else(|_| format!("{}-{}", hostname(), std::process::id())),
            duration: args.leader_election_duration,
        };
        // A standby is healthy and ready to take over: a rolling update of
        // several replicas must be able to finish.
        health.set_ready();
        let observer = tokio::select! {
            acquired = leader::acquire(&client, &settings, &permit) => {
                acquired.map_err(|e| format!("leader election on Lease {}/{}: {e}", settings.namespace, settings.name))?
            }
            () = shutdown.clone() => return Ok(()),
        };
        let lost = lost_leadership.clone();
        let holder = client.clone();
        let held = permit.clone();
        let kept = settings.clone();
        (
            permit,
            Some((
                tokio::spawn(async move {
                    leader::hold(holder, kept, held, observer).await;
                    lost.notify_one();
                }),
                settings,
            )),
        )
    } else {
        (permit, None)
    };
    let permit_after = permit.clone();
    ctx.set_write_permit(permit);
    ctx.metrics.set_leader(true);
    ctx.metrics.set_resync_period(args.resync_period);

    let (reconciles, caches_synced) = controller::run(Arc::new(ctx), shutdown.clone());
    tokio::spawn(async move {
        caches_synced.await;
        tracing::info!("caches synced; ready");
        health.set_ready();
    });
    tracing::info!(namespaces = ?args.namespaces, "controller started");
    reconciles.for_each(|()| async {}).await;
    tracing::info!("controller stopped; shutting down");
    if let Some((holder, settings)) = leading {
        // hold() revokes the permit when it gives leadership up.
        if !permit_after.allows() {
            return Err("lost the leader election Lease".into());
        }
        holder.abort();
        // Stopped on purpose (SIGTERM: a rollout, a drain): the controllers
        // are done, so a standby may lead now rather than after the lease.
        leader::release(&client, &settings, &permit_after).await;
    }
    match server.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("the HTTP server on {} failed: {e}", args.http_addr)),
        Err(e) => Err(format!("the HTTP server task failed: {e}")),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "loginprofile-operator".into())
}

/// Resolves on SIGTERM (what Kubernetes sends) or Ctrl-C.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received"),
    }
}
