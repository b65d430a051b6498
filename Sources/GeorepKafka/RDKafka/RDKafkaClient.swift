internal import CRDKafka
import Dispatch
import Foundation
import Logging
import Synchronization

/// Owns one librdkafka handle (`rd_kafka_t`) and the thread that drains its main queue.
///
/// librdkafka is configured to deliver logs, errors, delivery reports and commit results as
/// events on the main queue (`rd_kafka_conf_set_events`, `log.queue=true`); one poller thread
/// of ours drains that queue in batches and hands each event to the owner. No Swift code runs
/// on librdkafka's own threads.
///
/// - Important: ``destroy()`` must be called exactly once, after the owner has stopped using
///   the handle; it is never called from `deinit`.
final class RDKafkaClient: @unchecked Sendable {
    /// The `rd_kafka_t *`. Valid until ``destroy()``.
    let handle: OpaquePointer
    let logger: Logger
    private let mainQueue: OpaquePointer
    private let isStopping = Atomic<Bool>(false)
    private let pollerDone = DispatchSemaphore(value: 0)
    private let isPolling = Atomic<Bool>(false)

    /// The most recent fatal error raised by librdkafka, if any.
    private let fatal = Mutex<KafkaError?>(nil)

    /// Creates a handle of `type` from `properties`.
    ///
    /// - Parameters:
    ///   - events: the `RD_KAFKA_EVENT_*` kinds to deliver on the main queue besides logs
    ///     and errors.
    ///   - configure: last changes to the `rd_kafka_conf_t` (callbacks, opaque) before the
    ///     handle is created.
    /// - Throws: a ``KafkaError`` naming the first property librdkafka rejects.
    init(
        type: rd_kafka_type_t,
        properties: [(String, String)],
        events: Int32,
        logger: Logger,
        configure: (OpaquePointer) -> Void = { _ in }
    ) throws(KafkaError) {
        let conf = rd_kafka_conf_new()!
        var errstr = [CChar](repeating: 0, count: 512)
        for (name, value) in properties + [("log.queue", "true")] {
            if rd_kafka_conf_set(conf, name, value, &errstr, errstr.count) != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw KafkaError(
                    code: .invalidArgument,
                    message: "configuration property '\(name)' rejected: \(String(errorBuffer: errstr))"
                )
            }
        }
        rd_kafka_conf_set_events(conf, events | RD_KAFKA_EVENT_LOG | RD_KAFKA_EVENT_ERROR)
        configure(conf)
        guard let handle = rd_kafka_new(type, conf, &errstr, errstr.count) else {
            // On failure the configuration still belongs to us.
            rd_kafka_conf_destroy(conf)
            throw KafkaError(code: .invalidArgument, message: "invalid configuration: \(String(errorBuffer: errstr))")
        }
        self.handle = handle
        self.logger = logger
        self.mainQueue = rd_kafka_queue_get_main(handle)
        rd_kafka_set_log_queue(handle, nil)
    }

    /// The name librdkafka gave this instance, such as `georep#producer-1`.
    var name: String { String(cString: rd_kafka_name(handle)) }

    /// Starts the poller thread; `handler` receives every event other than logs and errors,
    /// on that thread, and must not keep the pointer (the event is destroyed afterwards).
    /// `afterDestroying` runs on that thread after each event is destroyed (for a producer's
    /// delivery reports, when the records they reported are freed and their queue space with them).
    func startPolling(_ handler: @escaping @Sendable (OpaquePointer) -> Void, afterDestroying: (@Sendable () -> Void)? = nil) {
        precondition(!isPolling.exchange(true, ordering: .relaxed), "poller already started")
        let thread = Thread { [self] in
            while !isStopping.load(ordering: .acquiring) {
                guard let event = rd_kafka_queue_poll(mainQueue, 200) else { continue }
                switch rd_kafka_event_type(event) {
                case RD_KAFKA_EVENT_LOG: log(event)
                case RD_KAFKA_EVENT_ERROR: report(event)
                default: handler(event)
                }
                rd_kafka_event_destroy(event)
                afterDestroying?()
            }
            pollerDone.signal()
        }
        thread.name = "georep-rdkafka-poller"
        thread.start()
    }

    /// Stops the poller thread and waits for it to finish.
    func stopPolling() {
        guard isPolling.load(ordering: .relaxed), !isStopping.exchange(true, ordering: .acquiringAndReleasing) else {
            return
        }
        rd_kafka_queue_yield(mainQueue)
        pollerDone.wait()
    }

    /// Stops polling and destroys the handle. Blocking: call it off the cooperative pool.
    func destroy() {
        stopPolling()
        rd_kafka_queue_destroy(mainQueue)
        rd_kafka_destroy(handle)
    }

    /// The fatal error that made this instance unusable, if one was raised.
    var fatalError: KafkaError? { fatal.withLock { $0 } }

    /// Fetches the metadata (partitions, leaders) of `topics` into librdkafka's cache, waiting
    /// at most `timeout` per topic on a Dispatch thread. A failure is only logged: librdkafka
    /// keeps looking for the leaders itself.
    func fetchMetadata(topics: Set<String>, timeout: Duration) async {
        let milliseconds = timeout.milliseconds
        try? await runBlocking { [self] in
            for topic in topics.sorted() {
                let rkt = rd_kafka_topic_new(handle, topic, nil)
                defer { rd_kafka_topic_destroy(rkt) }
                var metadata: UnsafePointer<rd_kafka_metadata>?
                let err = rd_kafka_metadata(handle, 0, rkt, &metadata, milliseconds)
                if let metadata { rd_kafka_metadata_destroy(metadata) }
                if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    logger.debug("no metadata yet for \(topic): \(KafkaError(err))")
                }
            }
        }
    }

    private func log(_ event: OpaquePointer) {
        var facility: UnsafePointer<CChar>?
        var message: UnsafePointer<CChar>?
        var level: Int32 = 0
        guard rd_kafka_event_log(event, &facility, &message, &level) == 0 else { return }
        let text = message.map { String(cString: $0) } ?? ""
        let fac = facility.map { String(cString: $0) } ?? ""
        // librdkafka uses syslog levels.
        let swiftLevel: Logger.Level =
            switch level {
            case ...2: .critical
            case 3: .error
            case 4: .warning
            case 5: .notice
            case 6: .info
            default: .debug
            }
        logger.log(level: swiftLevel, "\(text)", metadata: ["rdkafka.facility": "\(fac)", "rdkafka.client": "\(name)"])
    }

    private func report(_ event: OpaquePointer) {
        let code = rd_kafka_event_error(event)
        let text = String(cString: rd_kafka_event_error_string(event))
        let isFatal = rd_kafka_event_error_is_fatal(event) != 0
        if isFatal {
            var errstr = [CChar](repeating: 0, count: 512)
            let fatalCode = rd_kafka_fatal_error(handle, &errstr, errstr.count)
            let error = KafkaError(
                code: KafkaError.Code(rawValue: fatalCode.rawValue),
                message: String(errorBuffer: errstr),
                isFatal: true
            )
            fatal.withLock { $0 = error }
            logger.critical("fatal Kafka error: \(error)", metadata: ["rdkafka.client": "\(name)"])
        } else {
            // Transient by nature (a broker connection dropped, all brokers down for a while):
            // librdkafka retries on its own.
            logger.warning(
                "Kafka client error: \(text)",
                metadata: ["rdkafka.client": "\(name)", "rdkafka.error": "\(KafkaError.Code(rawValue: code.rawValue).name)"]
            )
        }
    }
}

/// Runs a blocking librdkafka call on a Dispatch thread, never on Swift's cooperative pool.
func runBlocking<T: Sendable>(
    on queue: DispatchQueue = .global(),
    _ body: @escaping @Sendable () throws(KafkaError) -> T
) async throws(KafkaError) -> T {
    let result: Result<T, KafkaError> = await withCheckedContinuation { continuation in
        queue.async {
            do throws(KafkaError) {
                continuation.resume(returning: .success(try body()))
            } catch {
                continuation.resume(returning: .failure(error))
            }
        }
    }
    return try result.get()
}

extension String {
    /// The text of a NUL-terminated error buffer filled in by librdkafka.
    init(errorBuffer buffer: [CChar]) {
        self = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
