//! The Fleet service as served: the generated `FleetServer` for every
//! call but Watch, which is served here with a codec that sends the views'
//! pre-encoded updates as they are (each delta is encoded once, however
//! many streams follow it). To clients it is the same `Fleet.Watch`.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes};
use stacktop_proto::v1::WatchRequest;
use stacktop_proto::v1::fleet_server::FleetServer;
use tokio_stream::Stream;
use tonic::body::Body;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::codegen::http;
use tonic::server::{Grpc, NamedService, ServerStreamingService};
use tonic::{Request, Response, Status};

use super::FleetService;

/// The path Watch is called at.
const WATCH_PATH: &str = "/stacktop.v1.Fleet/Watch";

/// Largest request accepted on Watch.
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Fleet with Watch sending pre-encoded updates.
#[derive(Debug, Clone)]
pub struct FleetRoutes {
    generated: FleetServer<FleetService>,
    service: FleetService,
}

impl FleetRoutes {
    /// Routes for `service`; `generated` serves every call but Watch.
    pub fn new(service: FleetService, generated: FleetServer<FleetService>) -> Self {
        Self { generated, service }
    }
}

impl NamedService for FleetRoutes {
    const NAME: &'static str = <FleetServer<FleetService> as NamedService>::NAME;
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = Result<T, Infallible>> + Send>>;

impl<B> tower_service::Service<http::Request<B>> for FleetRoutes
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != WATCH_PATH {
            return Box::pin(tower_service::Service::call(&mut self.generated, req));
        }
        let watch = Watch(self.service.clone());
        Box::pin(async move {
            let mut grpc = Grpc::new(PassThrough)
                .apply_max_message_size_config(Some(MAX_REQUEST_BYTES), Some(usize::MAX));
            Ok(grpc.server_streaming(watch, req).await)
        })
    }
}

/// The Watch handler for the codec below.
struct Watch(FleetService);

type UpdateStream = Pin<Box<dyn Stream<Item = Result<Bytes, Status>> + Send>>;

impl ServerStreamingService<WatchRequest> for Watch {
    type Response = Bytes;
    type ResponseStream = UpdateStream;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Response<UpdateStream>, Status>> + Send>>;

    fn call(&mut self, request: Request<WatchRequest>) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move { service.start_watch(request.remote_addr()) })
    }
}

/// Decodes `WatchRequest`s; encodes updates that are already encoded by
/// copying their bytes.
#[derive(Debug, Clone, Copy, Default)]
struct PassThrough;

impl Codec for PassThrough {
    type Encode = Bytes;
    type Decode = WatchRequest;
    type Encoder = PassThrough;
    type Decoder = tonic_prost::ProstDecoder<WatchRequest>;

    fn encoder(&mut self) -> Self::Encoder {
        PassThrough
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstDecoder::new(Default::default())
    }
}

impl Encoder for PassThrough {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}
