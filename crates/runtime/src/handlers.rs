//! The gRPC handlers of the FHIR interactions, written once for every
//! service. Each service's proto declares its own request and response
//! messages (buf's lint wants one pair per RPC), with the same fields; this
//! macro maps them onto [`Resources`](crate::resources::Resources).

/// Implement a service's generated tonic trait: the seven FHIR
/// interactions (Create, Read, Vread, Update, Delete, History, Search) from
/// the handler's `resources` field, plus the items given in braces.
///
/// With `and transaction`, also Transaction: a transaction Bundle of the
/// service's types applied atomically (for a service whose transactions
/// need nothing more; encounters' also records consultations).
///
/// ```ignore
/// corridor_runtime::fhir_service! {
///     impl IdentityService for Identity, messages pb and transaction {}
/// }
/// ```
#[macro_export]
macro_rules! fhir_service {
    (impl $service:ident for $handler:ident, messages $pb:ident and transaction { $($rest:tt)* }) => {
        $crate::fhir_service! {
            impl $service for $handler, messages $pb {
                async fn transaction(
                    &self,
                    request: tonic::Request<$pb::TransactionRequest>,
                ) -> Result<tonic::Response<$pb::TransactionResponse>, tonic::Status> {
                    let key = $crate::idempotency_key(&request)?;
                    let message = request.get_ref();
                    let part = Some(message.distributed_transaction.as_str()).filter(|p| !p.is_empty());
                    let requests = self.resources.parse_transaction(&message.bundle, part.is_some())?;
                    let (result, bundle) = self.resources.transaction(&requests, key.as_deref(), part).await?;
                    tracing::info!(entries = result.entries.len(), replayed = result.replayed, "transaction");
                    Ok($crate::resources::respond_replayed(
                        $pb::TransactionResponse {
                            bundle: Some(bundle),
                        },
                        result.replayed,
                    ))
                }

                $($rest)*
            }
        }
    };
    (impl $service:ident for $handler:ident, messages $pb:ident { $($rest:tt)* }) => {
        #[tonic::async_trait]
        impl $service for $handler {
            async fn settle_transaction(
                &self,
                request: tonic::Request<$pb::SettleTransactionRequest>,
            ) -> Result<tonic::Response<$pb::SettleTransactionResponse>, tonic::Status> {
                let req = request.into_inner();
                self.resources.settle_part(&req.transaction_id, req.commit).await?;
                tracing::info!(transaction = %req.transaction_id, commit = req.commit, "transaction part settled");
                Ok(tonic::Response::new($pb::SettleTransactionResponse {}))
            }

            async fn create(
                &self,
                request: tonic::Request<$pb::CreateRequest>,
            ) -> Result<tonic::Response<$pb::CreateResponse>, tonic::Status> {
                let key = $crate::idempotency_key(&request)?;
                let req = request.into_inner();
                let result = self
                    .resources
                    .create(&req.resource, &req.if_none_exist, key.as_deref())
                    .await?;
                tracing::info!(resource_type = %result.stored.resource_type, id = %result.stored.id, outcome = ?result.outcome, replayed = result.replayed, "create");
                let message = $pb::CreateResponse {
                    resource: Some($crate::resources::to_proto(&result.stored)),
                    created: $crate::resources::created(&result),
                };
                Ok($crate::resources::respond(message, &result))
            }

            async fn read(
                &self,
                request: tonic::Request<$pb::ReadRequest>,
            ) -> Result<tonic::Response<$pb::ReadResponse>, tonic::Status> {
                let req = request.into_inner();
                let resource = self.resources.read(&req.resource_type, &req.id).await?;
                Ok(tonic::Response::new($pb::ReadResponse {
                    resource: Some(resource),
                }))
            }

            async fn vread(
                &self,
                request: tonic::Request<$pb::VreadRequest>,
            ) -> Result<tonic::Response<$pb::VreadResponse>, tonic::Status> {
                let req = request.into_inner();
                let resource = self
                    .resources
                    .vread(&req.resource_type, &req.id, &req.version_id)
                    .await?;
                Ok(tonic::Response::new($pb::VreadResponse {
                    resource: Some(resource),
                }))
            }

            async fn update(
                &self,
                request: tonic::Request<$pb::UpdateRequest>,
            ) -> Result<tonic::Response<$pb::UpdateResponse>, tonic::Status> {
                let key = $crate::idempotency_key(&request)?;
                let req = request.into_inner();
                let result = self
                    .resources
                    .update(
                        &req.resource_type,
                        &req.id,
                        &req.resource,
                        &req.if_match,
                        key.as_deref(),
                    )
                    .await?;
                tracing::info!(resource_type = %result.stored.resource_type, id = %result.stored.id, version = result.stored.version, replayed = result.replayed, "update");
                Ok($crate::resources::respond(
                    $pb::UpdateResponse {
                        resource: Some($crate::resources::to_proto(&result.stored)),
                    },
                    &result,
                ))
            }

            async fn delete(
                &self,
                request: tonic::Request<$pb::DeleteRequest>,
            ) -> Result<tonic::Response<$pb::DeleteResponse>, tonic::Status> {
                let key = $crate::idempotency_key(&request)?;
                let req = request.into_inner();
                let result = self
                    .resources
                    .delete(&req.resource_type, &req.id, &req.if_match, key.as_deref())
                    .await?;
                tracing::info!(resource_type = %result.stored.resource_type, id = %result.stored.id, version = result.stored.version, "delete");
                Ok($crate::resources::respond(
                    $pb::DeleteResponse {
                        resource: Some($crate::resources::to_proto(&result.stored)),
                    },
                    &result,
                ))
            }

            async fn history(
                &self,
                request: tonic::Request<$pb::HistoryRequest>,
            ) -> Result<tonic::Response<$pb::HistoryResponse>, tonic::Status> {
                let req = request.into_inner();
                let bundle = self
                    .resources
                    .history(&req.resource_type, &req.id, req.count, &req.page_token)
                    .await?;
                Ok(tonic::Response::new($pb::HistoryResponse {
                    bundle: Some(bundle),
                }))
            }

            async fn search(
                &self,
                request: tonic::Request<$pb::SearchRequest>,
            ) -> Result<tonic::Response<$pb::SearchResponse>, tonic::Status> {
                let req = request.into_inner();
                let bundle = self
                    .resources
                    .search(&req.resource_type, &req.parameters, &req.page_token)
                    .await?;
                Ok(tonic::Response::new($pb::SearchResponse {
                    bundle: Some(bundle),
                }))
            }

            $($rest)*
        }
    };
}
