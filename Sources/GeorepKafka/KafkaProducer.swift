internal import CRDKafka
import Dispatch
import Foundation
public import Logging
import Synchronization

/// Produces records to Kafka through librdkafka.
///
/// Idempotent with `acks=all` by default. Two ways to send:
/// - ``send(_:)`` awaits the record's delivery report (the writer's path: a write is
///   acknowledged only once Kafka has it);
/// - ``enqueue(_:)`` returns as soon as librdkafka has queued the record; reports arrive in
///   bulk through the `onDeliveryReports` handler (the high-throughput path).
///
/// Both wait, without blocking a thread, while librdkafka's bounded local queue is full.
/// Close with ``close(timeout:)``; nothing happens in `deinit`.
public final class KafkaProducer: Sendable {
    /// Receives delivery reports of records sent with ``enqueue(_:)``, in batches, on the
    /// producer's poller thread: keep it short and non-blocking.
    public typealias DeliveryReportHandler = @Sendable ([KafkaDeliveryReport]) -> Void

    private typealias Continuation = CheckedContinuation<KafkaDeliveryReport, Never>

    private enum Slot {
        case awaiting(Continuation)
        case arrived(KafkaDeliveryReport)
    }

    private struct State {
        var nextID: UInt = 0
        var slots: [UInt: Slot] = [:]
        var spaceWaiters: [CheckedContinuation<Void, Never>] = []
    }

    /// A librdkafka topic handle, kept for the producer's life.
    private struct TopicHandle: @unchecked Sendable {
        let pointer: OpaquePointer
    }

    private let client: RDKafkaClient
    private let state = Mutex(State())
    /// Topic handles by name, created on first use and destroyed by ``close(timeout:)``.
    private let topicHandles = Mutex<[String: TopicHandle]>([:])
    /// Bumped (with `state` locked) after every event of delivery reports is destroyed: queue
    /// space may have been freed. Read without the lock on the fast path.
    private let reportGeneration = Atomic<UInt64>(0)
    private let isClosed = Atomic<Bool>(false)
    private let onDeliveryReports: DeliveryReportHandler?
    private let logger: Logger
    /// Producers waiting for queue space are woken once fewer records than this are queued
    /// or in flight (or at once when the bound is in bytes): woken at every delivery
    /// report, a producer of small records would wake, queue a handful and wait again
    /// thousands of times per million records.
    private let resumeBelow: Int

    /// Creates a producer and connects it to the cluster.
    ///
    /// - Throws: ``KafkaError`` naming a configuration property librdkafka rejects.
    public init(
        configuration: KafkaProducerConfiguration,
        logger: Logger,
        onDeliveryReports: DeliveryReportHandler? = nil
    ) throws(KafkaError) {
        self.logger = logger
        self.onDeliveryReports = onDeliveryReports
        resumeBelow = max(1, configuration.effectiveMaxQueuedMessages * 3 / 4)
        client = try RDKafkaClient(
            type: RD_KAFKA_PRODUCER,
            properties: configuration.librdkafkaProperties,
            events: RD_KAFKA_EVENT_DR,
            logger: logger
        )
        client.startPolling({ [self] event in
            if rd_kafka_event_type(event) == RD_KAFKA_EVENT_DR { handleDeliveryReports(event) }
        }, afterDestroying: { [self] in resumeSpaceWaiters() })
    }

    /// Produces `record` and waits for Kafka's acknowledgement.
    ///
    /// - Returns: the delivery report; its ``KafkaDeliveryReport/error`` says why the record
    ///   was not delivered (for example a message time-out).
    /// - Throws: when the record could not be queued (unknown partition, producer closed,
    ///   a fatal error).
    public func send(_ record: KafkaRecord) async throws(KafkaError) -> KafkaDeliveryReport {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        try await produce(record, id: id)
        return await withCheckedContinuation { (continuation: Continuation) in
            let arrived: KafkaDeliveryReport? = state.withLock { state in
                if case .arrived(let report) = state.slots.removeValue(forKey: id) { return report }
                state.slots[id] = .awaiting(continuation)
                return nil
            }
            if let arrived { continuation.resume(returning: arrived) }
        }
    }

    /// Queues `record` for delivery and returns; its report goes to the `onDeliveryReports`
    /// handler (or, for a failure without a handler, to the log).
    ///
    /// - Throws: when the record could not be queued.
    public func enqueue(_ record: KafkaRecord) async throws(KafkaError) {
        try await produce(record, id: 0)
    }

    /// Queues `records` in order, as ``enqueue(_:)`` one by one would, without an asynchronous
    /// call per record: it suspends only while librdkafka's local queue is full. The bulk path
    /// of loaders and benchmarks.
    ///
    /// Inlinable, so that it is specialized for the caller's sequence: unspecialized, each
    /// record cost several look-ups of generic metadata, more than queueing it.
    ///
    /// - Throws: when a record could not be queued; the records before it are queued.
    @inlinable
    public func enqueue(contentsOf records: some Sequence<KafkaRecord>) async throws(KafkaError) {
        var current: (topic: String, handle: OpaquePointer)?
        for record in records {
            if current?.topic != record.topic { current = (record.topic, try handle(for: record)) }
            if try !queue(record, id: 0, topic: current!.handle) {
                try await queueWhenSpaceFrees(record, id: 0, topic: current!.handle)
            }
        }
    }

    /// Looks up the partitions and leaders of `topics` now, so that the first records sent to
    /// them are not held while librdkafka looks them up on its own (librdkafka 2.0.2 holds a
    /// new topic's first records for hundreds of milliseconds). Call it before taking writes;
    /// a topic that cannot be looked up is only logged.
    public func prepare(topics: [String], timeout: Duration = .seconds(5)) async {
        await client.fetchMetadata(topics: Set(topics), timeout: timeout)
    }

    /// Records queued locally or in flight, not yet acknowledged.
    public var inFlightCount: Int { Int(rd_kafka_outq_len(client.handle)) }

    /// Waits until every queued record has its delivery report, at most `timeout`.
    ///
    /// - Throws: ``KafkaError/Code/timedOut`` with the number still in flight.
    public func flush(timeout: Duration) async throws(KafkaError) {
        let client = client
        try await runBlocking { () throws(KafkaError) in
            let err = rd_kafka_flush(client.handle, timeout.milliseconds)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                throw KafkaError(
                    code: KafkaError.Code(rawValue: err.rawValue),
                    message: "flush timed out with \(rd_kafka_outq_len(client.handle)) records still in flight",
                    isRetriable: true
                )
            }
        }
    }

    /// Stops taking records, flushes for at most `timeout`, fails what is still undelivered
    /// (purged, reported with an error), and destroys the librdkafka handle.
    ///
    /// - Important: call exactly once, after the last send.
    public func close(timeout: Duration = .seconds(10)) async {
        isClosed.store(true, ordering: .releasing)
        do {
            try await flush(timeout: timeout)
        } catch {
            logger.error("closing producer: \(error); purging the rest")
            rd_kafka_purge(client.handle, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT)
            try? await flush(timeout: .seconds(1))
        }
        let handles = topicHandles.withLock { handles in
            defer { handles.removeAll() }
            return Array(handles.values)
        }
        handles.forEach { rd_kafka_topic_destroy($0.pointer) }
        let client = client
        try? await runBlocking { client.destroy() }
        // Anything still awaited now has no report coming.
        let (orphans, waiters) = state.withLock { state in
            let orphans = state.slots.values.compactMap { slot -> Continuation? in
                if case .awaiting(let continuation) = slot { return continuation }
                return nil
            }
            state.slots.removeAll()
            defer { state.spaceWaiters.removeAll() }
            return (orphans, state.spaceWaiters)
        }
        let report = KafkaDeliveryReport(
            topic: "", partition: -1, offset: -1,
            error: KafkaError(code: .destroyed, message: "producer closed before delivery")
        )
        orphans.forEach { $0.resume(returning: report) }
        waiters.forEach { $0.resume() }
    }

    // MARK: - Producing

    /// Hands `record` to librdkafka, waiting for queue space when the local queue is full.
    private func produce(_ record: KafkaRecord, id: UInt) async throws(KafkaError) {
        let topic = try handle(for: record)
        if try !queue(record, id: id, topic: topic) { try await queueWhenSpaceFrees(record, id: id, topic: topic) }
    }

    /// The handle of `record`'s topic.
    @usableFromInline
    func handle(for record: KafkaRecord) throws(KafkaError) -> OpaquePointer {
        guard let topic = topicHandle(record.topic) else { throw cannotProduce(record, rd_kafka_last_error()) }
        return topic
    }

    /// Hands `record` to librdkafka once its full local queue has room.
    @usableFromInline
    func queueWhenSpaceFrees(_ record: KafkaRecord, id: UInt, topic: OpaquePointer) async throws(KafkaError) {
        while true {
            let generation = reportGeneration.load(ordering: .acquiring)
            if try queue(record, id: id, topic: topic) { return }
            await waitForQueueSpace(since: generation)
        }
    }

    /// Hands `record` to librdkafka now; false when its local queue is full.
    @usableFromInline
    func queue(_ record: KafkaRecord, id: UInt, topic: OpaquePointer) throws(KafkaError) -> Bool {
        if isClosed.load(ordering: .acquiring) { throw KafkaError(code: .state, message: "producer is closed") }
        let err = produceOnce(record, id: id, topic: topic)
        if err == RD_KAFKA_RESP_ERR_NO_ERROR { return true }
        if err == RD_KAFKA_RESP_ERR__QUEUE_FULL { return false }
        throw cannotProduce(record, err)
    }

    private func cannotProduce(_ record: KafkaRecord, _ err: rd_kafka_resp_err_t) -> KafkaError {
        client.fatalError ?? KafkaError(err, context: "cannot produce to \(record.topic)")
    }

    /// The handle of `topic`, created on first use (librdkafka refuses only invalid names).
    private func topicHandle(_ topic: String) -> OpaquePointer? {
        topicHandles.withLock { handles in
            if let handle = handles[topic] { return handle.pointer }
            guard let pointer = rd_kafka_topic_new(client.handle, topic, nil) else { return nil }
            handles[topic] = TopicHandle(pointer: pointer)
            return pointer
        }
    }

    private func produceOnce(_ record: KafkaRecord, id: UInt, topic: OpaquePointer) -> rd_kafka_resp_err_t {
        var headers: OpaquePointer?
        if !record.headers.isEmpty {
            headers = rd_kafka_headers_new(record.headers.count)
            for header in record.headers {
                if let value = header.value {
                    _ = value.withUnsafeBytes { rd_kafka_header_add(headers, header.name, -1, $0.baseAddress, $0.count) }
                } else {
                    rd_kafka_header_add(headers, header.name, -1, nil, 0)
                }
            }
        }
        let opaque = UnsafeMutableRawPointer(bitPattern: id)
        let err = withOptionalBytes(record.key) { key, keyLength in
            withOptionalBytes(record.value) { value, valueLength in
                georep_produce(
                    client.handle, topic, record.partition ?? RD_KAFKA_PARTITION_UA,
                    key, keyLength, value, valueLength, headers, opaque
                )
            }
        }
        // On success librdkafka owns the headers; on failure they are still ours.
        if err != RD_KAFKA_RESP_ERR_NO_ERROR, let headers { rd_kafka_headers_destroy(headers) }
        return err
    }

    /// Waits until a batch of delivery reports arrived after `generation` (and so may have
    /// freed queue space). Returns at once when one already has.
    private func waitForQueueSpace(since generation: UInt64) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let isStale = state.withLock { state in
                guard reportGeneration.load(ordering: .acquiring) == generation, !isClosed.load(ordering: .acquiring) else { return true }
                state.spaceWaiters.append(continuation)
                return false
            }
            if isStale { continuation.resume() }
        }
    }

    // MARK: - Delivery reports (poller thread)

    private func handleDeliveryReports(_ event: OpaquePointer) {
        var awaited: [(UInt, KafkaDeliveryReport)] = []
        var bulk: [KafkaDeliveryReport] = []
        var failures = 0
        var firstFailure: KafkaError?
        var topics = TopicNameCache()
        let wantsBulk = onDeliveryReports != nil
        // On the stack and uninitialized: an event comes per partition and request, and a
        // zeroed heap array per event cost more than reading its reports.
        withUnsafeTemporaryAllocation(of: UnsafePointer<rd_kafka_message_t>?.self, capacity: 1024) { messages in
            while true {
                let count = rd_kafka_event_message_array(event, messages.baseAddress!, messages.count)
                if count == 0 { break }
                for message in messages[0..<count] {
                    let message = message!.pointee
                    let id = UInt(bitPattern: message._private)
                    let failed = message.err != RD_KAFKA_RESP_ERR_NO_ERROR
                    // Without a bulk handler, fire-and-forget reports only count failures.
                    if id == 0, !wantsBulk, !failed { continue }
                    let topic = topics.name(of: message.rkt)
                    let error = failed ? KafkaError(message.err, context: "delivery to \(topic) failed") : nil
                    let report = KafkaDeliveryReport(topic: topic, partition: message.partition, offset: message.offset, error: error)
                    if id != 0 {
                        awaited.append((id, report))
                    } else if wantsBulk {
                        bulk.append(report)
                    } else {
                        failures += 1
                        if firstFailure == nil { firstFailure = error }
                    }
                }
            }
        }
        let resumed = state.withLock { state in
            var resumed: [(Continuation, KafkaDeliveryReport)] = []
            for (id, report) in awaited {
                if case .awaiting(let continuation) = state.slots.removeValue(forKey: id) {
                    resumed.append((continuation, report))
                } else {
                    state.slots[id] = .arrived(report)
                }
            }
            return resumed
        }
        for (continuation, report) in resumed { continuation.resume(returning: report) }
        if let onDeliveryReports, !bulk.isEmpty { onDeliveryReports(bulk) }
        if let firstFailure { logger.error("\(failures) records were not delivered; first: \(firstFailure)") }
    }

    /// Wakes the producers waiting for queue space. Runs after librdkafka destroyed an event
    /// (a batch of delivery reports frees its records' space only then): woken earlier, a
    /// producer could find the queue still full and wait for reports that no longer come.
    private func resumeSpaceWaiters() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            if !state.spaceWaiters.isEmpty, inFlightCount >= resumeBelow { return [] }
            reportGeneration.add(1, ordering: .releasing)
            defer { state.spaceWaiters.removeAll() }
            return state.spaceWaiters
        }
        waiters.forEach { $0.resume() }
    }
}

/// Calls `body` with the bytes of `data` (nil pointer and 0 for nil).
private func withOptionalBytes<T>(_ data: Data?, _ body: (UnsafeRawPointer?, Int) -> T) -> T {
    guard let data else { return body(nil, 0) }
    return data.withUnsafeBytes { body($0.baseAddress, $0.count) }
}

extension Duration {
    /// Whole milliseconds, clamped to the `Int32` range librdkafka's time-outs take.
    var milliseconds: Int32 {
        let (seconds, attoseconds) = components
        let ms = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return Int32(clamping: ms)
    }
}
