internal import CRDKafka

/// An error from the Kafka layer: librdkafka's error code, a message, and how to react to it.
///
/// The set of codes is open: any librdkafka code can appear, the common ones have names.
public struct KafkaError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A librdkafka error code (`rd_kafka_resp_err_t`): negative values are the client's own,
    /// positive ones come from the broker.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The numeric librdkafka code.
        public let rawValue: Int32
        /// Wraps a numeric librdkafka code.
        public init(rawValue: Int32) { self.rawValue = rawValue }

        /// Success; never carried by a thrown error.
        public static let noError = Code(rawValue: 0)
        /// The local produce queue is full: back-pressure.
        public static let queueFull = Code(rawValue: -184)
        /// An invalid argument or configuration value.
        public static let invalidArgument = Code(rawValue: -186)
        /// A local time-out.
        public static let timedOut = Code(rawValue: -185)
        /// A message was not delivered within `message.timeout.ms`.
        public static let messageTimedOut = Code(rawValue: -192)
        /// The end of a partition was reached (only with `enable.partition.eof`).
        public static let partitionEOF = Code(rawValue: -191)
        /// The topic is not known to the cluster.
        public static let unknownTopic = Code(rawValue: -188)
        /// The partition is not known to the cluster.
        public static let unknownPartition = Code(rawValue: -190)
        /// The requested offset is no longer (or not yet) in the log: data was lost to retention.
        public static let offsetOutOfRange = Code(rawValue: 1)
        /// The consumer reset its position after an offset out of range (`auto.offset.reset=error`).
        public static let autoOffsetReset = Code(rawValue: -140)
        /// The broker does not support the requested feature (for example CreateTopics on the development broker).
        public static let unsupportedFeature = Code(rawValue: -165)
        /// The record is larger than the producer's `message.max.bytes` or the broker's limit.
        public static let messageTooLarge = Code(rawValue: 10)
        /// The topic already exists.
        public static let topicAlreadyExists = Code(rawValue: 36)
        /// The client is in the wrong state for the call (for example closed).
        public static let state = Code(rawValue: -172)
        /// The client is being destroyed.
        public static let destroyed = Code(rawValue: -197)
        /// A fatal error was raised: the client instance is unusable.
        public static let fatal = Code(rawValue: -150)

        /// librdkafka's symbolic name, such as `_QUEUE_FULL`.
        public var name: String { String(cString: rd_kafka_err2name(rd_kafka_resp_err_t(rawValue: rawValue))) }
        /// librdkafka's description of the code.
        public var description: String { String(cString: rd_kafka_err2str(rd_kafka_resp_err_t(rawValue: rawValue))) }
    }

    /// The librdkafka code.
    public let code: Code
    /// What went wrong, in words; names the property, topic or partition involved where known.
    public let message: String
    /// The client instance can no longer be used.
    public let isFatal: Bool
    /// Trying the same call again may succeed.
    public let isRetriable: Bool

    /// Makes an error.
    public init(code: Code, message: String, isFatal: Bool = false, isRetriable: Bool = false) {
        self.code = code
        self.message = message
        self.isFatal = isFatal
        self.isRetriable = isRetriable
    }

    public var description: String { "\(message) (\(code.name))" }
}

extension KafkaError {
    /// An error from a bare librdkafka code, with librdkafka's description as the message
    /// unless `context` says more.
    init(_ err: rd_kafka_resp_err_t, context: String? = nil) {
        let code = Code(rawValue: err.rawValue)
        let text = code.description
        self.init(
            code: code,
            message: context.map { "\($0): \(text)" } ?? text,
            isFatal: code == .fatal,
            isRetriable: code == .queueFull || code == .timedOut
        )
    }

    /// Takes ownership of an `rd_kafka_error_t` (destroying it) and converts it.
    init(consuming error: OpaquePointer, context: String? = nil) {
        defer { rd_kafka_error_destroy(error) }
        let text = String(cString: rd_kafka_error_string(error))
        self.init(
            code: Code(rawValue: rd_kafka_error_code(error).rawValue),
            message: context.map { "\($0): \(text)" } ?? text,
            isFatal: rd_kafka_error_is_fatal(error) != 0,
            isRetriable: rd_kafka_error_is_retriable(error) != 0
        )
    }

    /// Throws when `err` is not `RD_KAFKA_RESP_ERR_NO_ERROR`.
    static func check(_ err: rd_kafka_resp_err_t, _ context: @autoclosure () -> String) throws(KafkaError) {
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, context: context()) }
    }

    /// Throws when `error` is non-nil (destroying it).
    static func check(_ error: OpaquePointer?, _ context: @autoclosure () -> String) throws(KafkaError) {
        if let error { throw KafkaError(consuming: error, context: context()) }
    }
}

/// Facts about the librdkafka library in use.
public enum Librdkafka {
    /// The version of the linked librdkafka, such as `2.0.2`; log it at start-up.
    public static var version: String { String(cString: rd_kafka_version_str()) }
}
