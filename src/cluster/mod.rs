//! What replicas share besides the database: one Redis connection (with a circuit breaker
//! so that a Redis outage costs requests nothing but their shared limits) and the
//! revocation fan-out that keeps every replica's auth cache honest, and the change feed's
//! notifications.

pub mod feed;
pub mod redis_link;
pub mod revocations;

pub use feed::Feed;
pub use redis_link::RedisLink;
pub use revocations::Revocations;
