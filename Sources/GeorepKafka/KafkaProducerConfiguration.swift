/// Settings of a ``KafkaProducer``.
///
/// The typed settings cover what georep uses; any other librdkafka property (SASL, TLS,
/// compression tuning and the rest) goes into ``properties`` and is passed through as is.
/// A property librdkafka rejects makes ``KafkaProducer/init(configuration:logger:)`` throw
/// an error that names it.
public struct KafkaProducerConfiguration: Sendable {
    /// `bootstrap.servers`: comma-separated `host:port` list.
    public var bootstrapServers: String
    /// `client.id`.
    public var clientID: String = "georep"
    /// `enable.idempotence`: no duplicates or reordering on retries; implies `acks=all`.
    public var isIdempotent: Bool = true
    /// `linger.ms`; nil keeps librdkafka's default (5 ms).
    public var lingerMilliseconds: Int? = nil
    /// `queue.buffering.max.messages`: the local queue bound in records; a full queue is back-pressure.
    public var maxQueuedMessages: Int = 100_000
    /// `queue.buffering.max.kbytes`: the local queue bound in KiB.
    public var maxQueuedKilobytes: Int = 65_536
    /// `message.timeout.ms`: how long a record may wait for delivery before it fails.
    public var messageTimeoutMilliseconds: Int = 120_000
    /// `transactional.id`: set for the primary writer role on a real cluster, so that the
    /// broker fences an older producer with the same id.
    public var transactionalID: String? = nil
    /// Any other librdkafka property, passed through unchanged; wins over the typed settings.
    public var properties: [String: String] = [:]

    /// Settings for a cluster reached at `bootstrapServers`, with safe defaults.
    public init(bootstrapServers: String) {
        self.bootstrapServers = bootstrapServers
    }

    /// The local queue bound in records librdkafka applies: ``maxQueuedMessages`` unless
    /// ``properties`` sets it.
    var effectiveMaxQueuedMessages: Int {
        properties["queue.buffering.max.messages"].flatMap { Int($0) } ?? maxQueuedMessages
    }

    /// The librdkafka properties these settings stand for, in a stable order.
    var librdkafkaProperties: [(String, String)] {
        var result: [(String, String)] = [
            ("bootstrap.servers", bootstrapServers),
            ("client.id", clientID),
            ("enable.idempotence", String(isIdempotent)),
            ("queue.buffering.max.messages", String(maxQueuedMessages)),
            ("queue.buffering.max.kbytes", String(maxQueuedKilobytes)),
            ("message.timeout.ms", String(messageTimeoutMilliseconds)),
        ]
        if let lingerMilliseconds { result.append(("linger.ms", String(lingerMilliseconds))) }
        if let transactionalID { result.append(("transactional.id", transactionalID)) }
        result += properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        return result
    }
}
