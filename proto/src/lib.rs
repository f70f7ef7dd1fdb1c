//! Corridor's gRPC contracts: the shared FHIR envelopes (`corridor.fhir.v1`)
//! and each service's API, generated from `proto/corridor/**` at build time.
//! Every service and client uses these types; nothing else defines wire shapes.

/// Shared FHIR envelopes: Resource, SearchParameter, Bundle, OperationOutcome.
pub mod fhir {
    pub mod v1 {
        tonic::include_proto!("corridor.fhir.v1");

        /// Fully qualified protobuf name, used as the `type_url` of status details.
        pub const OPERATION_OUTCOME_TYPE_URL: &str =
            "type.googleapis.com/corridor.fhir.v1.OperationOutcome";
    }
}

/// The identity service: Patient, Organization, Practitioner.
pub mod identity {
    #[expect(
        clippy::allow_attributes,
        reason = "tonic's generated server code carries #[allow] attributes"
    )]
    pub mod v1 {
        tonic::include_proto!("corridor.identity.v1");
    }
}

/// The encounters service: consultations, their clinical record and the
/// consult channel.
pub mod encounters {
    #[expect(
        clippy::allow_attributes,
        reason = "tonic's generated server code carries #[allow] attributes"
    )]
    pub mod v1 {
        tonic::include_proto!("corridor.encounters.v1");
    }
}

/// The referrals service: ServiceRequest and Task, the referral workflow and
/// its event feed.
pub mod referrals {
    #[expect(
        clippy::allow_attributes,
        reason = "tonic's generated server code carries #[allow] attributes"
    )]
    pub mod v1 {
        tonic::include_proto!("corridor.referrals.v1");
    }
}

/// Encoded `FileDescriptorSet` of every Corridor proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/corridor_descriptor.bin"));

/// Federation: what one jurisdiction's node asks of another (served by the
/// referrals service on its peer-facing port), and what an operator asks
/// about deliveries to peers.
pub mod federation {
    #[expect(
        clippy::allow_attributes,
        reason = "tonic's generated server code carries #[allow] attributes"
    )]
    pub mod v1 {
        tonic::include_proto!("corridor.federation.v1");
    }
}
