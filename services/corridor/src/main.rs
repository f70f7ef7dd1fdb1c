//! `corridor`: one binary for a whole node or any one of its services.
//!
//! `corridor` (or `corridor serve`) runs every service of a node (identity,
//! encounters and referrals) in one process with SQLite files under `./data`;
//! `corridor serve --service identity` runs one service alone, which is how a production deployment
//! runs it. Every setting is a flag with an environment variable, and all of
//! them are checked before any port is bound.

use std::process::ExitCode;

use clap::Parser;

mod config;
mod import;

use config::{Cli, Command, ServiceName};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return config::report_parse_error(&err),
    };
    let command = match cli.into_command() {
        Ok(command) => command,
        Err(err) => return config::report_parse_error(&err),
    };
    let node = match command {
        Command::Serve(args) => match args.validate() {
            Ok(node) => node,
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::from(2);
            }
        },
        Command::Certs(args) => {
            return match args.write() {
                Ok(written) => {
                    for path in written {
                        println!("wrote {path}");
                    }
                    println!(
                        "serve with them: CORRIDOR_TLS_CERT_FILE={dir}/node.pem CORRIDOR_TLS_KEY_FILE={dir}/node-key.pem CORRIDOR_TLS_CA_FILE={dir}/ca.pem corridor serve",
                        dir = args.out.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("error: {err}");
                    ExitCode::from(2)
                }
            };
        }
        Command::Federation(args) => return federation_command(args),
        Command::Health(args) => {
            let Some(runtime) = runtime() else {
                return ExitCode::FAILURE;
            };
            // A health check from 0.0.0.0:9464 asks the same process at
            // the loopback address.
            let addr = args.addr.replace("0.0.0.0", "127.0.0.1");
            return match runtime.block_on(corridor_runtime::ops::check(&addr, &args.service)) {
                Ok(()) => {
                    println!("SERVING");
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("not healthy: {err}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Import(args) => {
            let Some(runtime) = runtime() else {
                return ExitCode::FAILURE;
            };
            return runtime.block_on(import::run(args));
        }
        Command::Token(args) => {
            return match args.mint() {
                Ok(token) => {
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("error: {err}");
                    ExitCode::from(2)
                }
            };
        }
    };
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(serve(node)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// How the identity service settles the parts of transactions that span
/// services: it reaches the other services where they run for this node.
fn coordination(
    node: &config::Node,
) -> anyhow::Result<corridor_identity::transactions::Coordination> {
    let channel = |url: &str| {
        corridor_runtime::link::channel(url, node.identity_deadline, node.service_tls.as_ref())
            .map_err(|e| anyhow::anyhow!("identity: the service at {url}: {e}"))
    };
    Ok(corridor_identity::transactions::Coordination {
        participants: corridor_identity::transactions::Participants {
            encounters: Some(channel(&node.encounters_url)?),
            referrals: Some(channel(&node.referrals_url)?),
            deadline: node.identity_deadline,
        },
        timeout: node.transaction_timeout,
    })
}

/// The name the gateway's health is reported under on the operations port.
const GATEWAY_HEALTH: &str = "corridor.gateway";

/// Start the chosen services in start-up order (telemetry, store and
/// migrations, bind), print where each listens, and serve until a signal.
async fn serve(node: config::Node) -> anyhow::Result<()> {
    let telemetry = corridor_runtime::telemetry::init(&trace_service_name(&node))?;
    let (trigger, shutdown) = corridor_runtime::shutdown_channel();
    tokio::spawn(trigger.clone().on_signals());

    let grpc = if node.tls {
        "gRPC over mutual TLS"
    } else {
        "gRPC"
    };
    let mut running = Vec::new();
    // The process is ready once every service it runs is, not merely the
    // first to start: each is expected from the beginning.
    for service in &node.services {
        let name = match service.name {
            ServiceName::Identity => corridor_identity::SERVICE_NAME,
            ServiceName::Encounters => corridor_encounters::SERVICE_NAME,
            ServiceName::Referrals => corridor_referrals::SERVICE_NAME,
            ServiceName::Gateway => GATEWAY_HEALTH,
        };
        corridor_runtime::ops::report(name, corridor_runtime::ops::ServingStatus::NotServing).await;
        if service.name == ServiceName::Referrals && node.federation.is_some() {
            corridor_runtime::ops::report(
                corridor_referrals::FEDERATION_SERVICE_NAME,
                corridor_runtime::ops::ServingStatus::NotServing,
            )
            .await;
        }
    }
    if let Some(addr) = node.ops_addr {
        // Bound first, so that probes and scrapes see every service start.
        let listener = corridor_runtime::server::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("operations port: {e}"))?;
        println!(
            "operations listening on {}  (Prometheus metrics at http://{}/metrics; gRPC health for probes)",
            listener.local_addr()?,
            listener.local_addr()?
        );
        tokio::spawn(async move {
            if let Err(err) = corridor_runtime::ops::serve(listener).await {
                tracing::error!(error = %err, "the operations port stopped");
            }
        });
    }
    for service in &node.services {
        match service.name {
            ServiceName::Identity => {
                let tokens = node
                    .tokens
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("identity: no signing key was configured"))?;
                let app = corridor_identity::Application::build_full(
                    service.config.clone(),
                    node.match_rules.clone(),
                    tokens.settings.clone(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("identity: {e}"))?
                .coordinating(coordination(&node)?);
                println!(
                    "identity   listening on {}  ({grpc}; store: {}; token signing key: {})",
                    app.local_addr(),
                    service.store_label,
                    tokens.key_label
                );
                running.push(tokio::spawn(app.run_until_stopped(shutdown.clone())));
            }
            ServiceName::Encounters => {
                let config = corridor_encounters::EncountersConfig {
                    service: service.config.clone(),
                    identity_url: node.identity_url.clone(),
                    // $everything includes referrals when the node runs them
                    // (here, or elsewhere at CORRIDOR_REFERRALS_URL).
                    referrals_url: Some(node.referrals_url.clone()),
                    identity_deadline: node.identity_deadline,
                    channel_buffer: node.channel_buffer,
                    channel_stall: node.channel_stall,
                };
                let app = corridor_encounters::Application::build(config)
                    .await
                    .map_err(|e| anyhow::anyhow!("encounters: {e}"))?;
                println!(
                    "encounters listening on {}  ({grpc}; identity at {}; store: {})",
                    app.local_addr(),
                    node.identity_url,
                    service.store_label
                );
                running.push(tokio::spawn(app.run_until_stopped(shutdown.clone())));
            }
            ServiceName::Referrals => {
                let config = corridor_referrals::ReferralsConfig {
                    service: service.config.clone(),
                    identity_url: node.identity_url.clone(),
                    encounters_url: node.encounters_url.clone(),
                    deadline: node.identity_deadline,
                    watch: corridor_runtime::follow::Limits {
                        buffer: node.channel_buffer,
                        stall: node.channel_stall,
                    },
                    federation: node.federation.clone(),
                };
                let app = corridor_referrals::Application::build(config)
                    .await
                    .map_err(|e| anyhow::anyhow!("referrals: {e}"))?;
                println!(
                    "referrals  listening on {}  ({grpc}; store: {})",
                    app.local_addr(),
                    service.store_label
                );
                if let (Some(addr), Some(federation)) = (app.federation_addr(), &node.federation) {
                    let peers: Vec<String> = federation
                        .peers
                        .iter()
                        .map(|p| format!("{} ({}) at {}", p.node_id, p.jurisdiction, p.endpoint))
                        .collect();
                    println!(
                        "federation listening on {addr}  (node {} of {}; peers: {})",
                        federation.node_id,
                        federation.jurisdiction,
                        peers.join(", ")
                    );
                }
                running.push(tokio::spawn(app.run_until_stopped(shutdown.clone())));
            }
            // Started below, once the services it calls are up.
            ServiceName::Gateway => {}
        }
    }
    if let Some(config) = node.gateway.clone() {
        let app = corridor_gateway::Application::build(config)
            .await
            .map_err(|e| anyhow::anyhow!("gateway: {e}"))?;
        println!(
            "gateway    listening on {}  (FHIR R4 REST at http://{}{}; identity at {}, encounters at {}, referrals at {})",
            app.local_addr(),
            app.local_addr(),
            corridor_gateway::BASE_PATH,
            node.identity_url,
            node.encounters_url,
            node.referrals_url
        );
        corridor_runtime::ops::report(
            GATEWAY_HEALTH,
            corridor_runtime::ops::ServingStatus::Serving,
        )
        .await;
        let stopping = shutdown.clone();
        tokio::spawn(async move {
            stopping.wait().await;
            corridor_runtime::ops::report(
                GATEWAY_HEALTH,
                corridor_runtime::ops::ServingStatus::NotServing,
            )
            .await;
        });
        running.push(tokio::spawn(app.run_until_stopped(shutdown.clone())));
    }
    if let Some(tokens) = node.tokens.as_ref().filter(|t| t.development) {
        let transport = if node.tls {
            "-cacert <CA file> -cert <a client certificate> -key <its key>"
        } else {
            "-plaintext"
        };
        println!(
            "development access: every call needs a token. As the node's operator:\n  \
             export TOKEN=$(cargo run --release -q -- token --admin)\n  \
             grpcurl {transport} -H \"authorization: Bearer $TOKEN\" ...   (corridor token --help says more)\n\
             tokens are signed with the development key {}; partners get theirs at {}",
            tokens.key_label, tokens.settings.token_url
        );
    }
    println!("corridor node ready; Ctrl-C or SIGTERM stops it");

    let mut failure = None;
    for task in running {
        let result = task.await;
        // One service failing stops the others rather than leaving half a node.
        trigger.trigger();
        match result {
            Ok(Ok(())) => {}
            Ok(Err(err)) => failure = Some(anyhow::anyhow!(err)),
            Err(err) => failure = Some(anyhow::anyhow!("service task failed: {err}")),
        }
    }
    tracing::info!("node stopped");
    telemetry.shutdown();
    failure.map_or(Ok(()), Err)
}

/// What the process's spans are attributed to: `OTEL_SERVICE_NAME` when
/// set, else `corridor-<service>` for a process that runs one service (a
/// container or pod), else `corridor` for a whole node.
fn trace_service_name(node: &config::Node) -> String {
    if let Ok(name) = std::env::var("OTEL_SERVICE_NAME")
        && !name.trim().is_empty()
    {
        return name;
    }
    // The service's name as --service spells it.
    match node.services.as_slice() {
        [one] => match clap::ValueEnum::to_possible_value(&one.name) {
            Some(value) => format!("corridor-{}", value.get_name()),
            None => "corridor".to_owned(),
        },
        _ => "corridor".to_owned(),
    }
}

/// The async runtime, or None (said on stderr) when it cannot start.
fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Some(runtime),
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            None
        }
    }
}

/// `corridor federation …`: the operator's calls about deliveries to peers.
fn federation_command(args: config::FederationArgs) -> ExitCode {
    let node = match args.node.validate() {
        Ok(node) => node,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(federation_call(node, args.action)) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn federation_call(
    node: config::Node,
    action: config::FederationAction,
) -> Result<Vec<String>, String> {
    use corridor_proto::federation::v1 as pb;
    let channel = corridor_runtime::link::channel(
        &node.referrals_url,
        std::time::Duration::from_secs(10),
        node.service_tls.as_ref(),
    )
    .map_err(|e| format!("referrals at {}: {e}", node.referrals_url))?;
    let mut client =
        pb::federation_operator_service_client::FederationOperatorServiceClient::new(channel);
    // Over mutual TLS the node's certificate speaks for the operator;
    // otherwise a short-lived operator's token signed with the node's key.
    let token = match (&node.service_tls, &node.tokens) {
        (Some(_), _) => None,
        (None, Some(tokens)) => Some(config::operator_token(&tokens.settings)?),
        (None, None) => {
            return Err(
                "no mutual TLS and no signing key to make an operator's token with".to_owned(),
            );
        }
    };
    fn with_token<M>(token: Option<&str>, message: M) -> tonic::Request<M> {
        let mut request = tonic::Request::new(message);
        match token {
            Some(token) => {
                if let Ok(value) = format!("Bearer {token}").parse() {
                    request
                        .metadata_mut()
                        .insert(corridor_runtime::auth::AUTHORIZATION, value);
                }
            }
            // The node's certificate names the referrals service.
            None => {
                request.metadata_mut().insert(
                    corridor_runtime::auth::ACTING_SERVICE,
                    tonic::metadata::MetadataValue::from_static("referrals"),
                );
            }
        }
        request
    }
    let token = token.as_deref();
    let refused = |status: tonic::Status| {
        format!(
            "the referrals service at {} answered {:?}: {}",
            node.referrals_url,
            status.code(),
            status.message()
        )
    };
    match action {
        config::FederationAction::Deliveries { state, peer, limit } => {
            let answer = client
                .list_deliveries(with_token(
                    token,
                    pb::ListDeliveriesRequest {
                        state: state.unwrap_or_default(),
                        peer: peer.unwrap_or_default(),
                        limit,
                    },
                ))
                .await
                .map_err(refused)?
                .into_inner();
            let mut lines = vec![format!(
                "{:>6}  {:<10} {:<9} {:<8} {:>8}  {:<24} {}",
                "id", "peer", "state", "kind", "attempts", "created", "message / last error"
            )];
            for d in answer.deliveries {
                lines.push(format!(
                    "{:>6}  {:<10} {:<9} {:<8} {:>8}  {:<24} {}{}",
                    d.id,
                    d.peer,
                    d.state,
                    d.kind,
                    d.attempts,
                    d.created_at,
                    d.message_id,
                    if d.last_error.is_empty() {
                        String::new()
                    } else {
                        format!(" / {}", d.last_error)
                    }
                ));
            }
            Ok(lines)
        }
        config::FederationAction::Retry {
            ids,
            all_parked,
            peer,
        } => {
            let answer = client
                .retry_deliveries(with_token(
                    token,
                    pb::RetryDeliveriesRequest {
                        ids,
                        all_parked,
                        peer: peer.unwrap_or_default(),
                    },
                ))
                .await
                .map_err(refused)?
                .into_inner();
            Ok(vec![format!(
                "{} parked message(s) put back to be sent",
                answer.retried
            )])
        }
    }
}
