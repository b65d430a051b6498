internal import CRDKafka
public import GeorepLog
import Dispatch
import Foundation
public import Logging
import Synchronization

/// Consumes records from Kafka through librdkafka.
///
/// Two ways to get partitions: ``assign(_:)`` names partitions and start offsets explicitly
/// (georep's applier, whose positions live in its store); ``subscribe(topics:)`` joins the
/// consumer group of ``KafkaConsumerConfiguration/groupID`` and lets Kafka split the partitions
/// between its members, with ``RebalanceHandlers`` told of every change.
///
/// ``poll(maxMessages:timeout:)`` returns a batch of whatever has arrived. Blocking librdkafka
/// calls run on Dispatch threads of the consumer, never on Swift's cooperative pool. Close with
/// ``close()``; nothing happens in `deinit`.
public final class KafkaConsumer: Sendable {
    /// Hooks run when the group changes this consumer's partitions. They run on the consumer's
    /// polling thread, inside ``poll(maxMessages:timeout:)`` or ``close()``, and may block briefly
    /// (commit, read a store).
    public struct RebalanceHandlers: Sendable {
        /// Called with newly assigned partitions; returns start positions for some of them
        /// (others start at the group's committed offset).
        public var onAssign: @Sendable ([TopicPartition]) -> [TopicPartition: KafkaOffset]
        /// Called with partitions about to be taken away: commit what was processed now.
        public var onRevoke: @Sendable ([TopicPartition]) -> Void

        /// Hooks that do nothing.
        public init(
            onAssign: @escaping @Sendable ([TopicPartition]) -> [TopicPartition: KafkaOffset] = { _ in [:] },
            onRevoke: @escaping @Sendable ([TopicPartition]) -> Void = { _ in }
        ) {
            self.onAssign = onAssign
            self.onRevoke = onRevoke
        }
    }

    private let client: RDKafkaClient
    private nonisolated(unsafe) let consumerQueue: OpaquePointer
    private let rebalancer: Rebalancer
    /// Serial: polls and the close that must follow the last poll.
    private let pollQueue = DispatchQueue(label: "georep.kafka.consumer.poll")
    private let pendingError = Mutex<KafkaError?>(nil)
    private let isClosed = Atomic<Bool>(false)
    /// Group-managed (``subscribe(topics:)``): rebalances can come between records.
    private let isSubscribed = Atomic<Bool>(false)
    private let logger: Logger

    /// Creates a consumer. It takes no partitions until ``assign(_:)`` or ``subscribe(topics:)``.
    ///
    /// - Throws: ``KafkaError`` naming a configuration property librdkafka rejects.
    public init(
        configuration: KafkaConsumerConfiguration,
        logger: Logger,
        rebalance: RebalanceHandlers = RebalanceHandlers()
    ) throws(KafkaError) {
        let rebalancer = Rebalancer(handlers: rebalance, logger: logger)
        self.rebalancer = rebalancer
        self.logger = logger
        client = try RDKafkaClient(
            type: RD_KAFKA_CONSUMER,
            properties: configuration.librdkafkaProperties,
            // Records and rebalances arrive in order as events on the consumer queue; commit
            // results, logs and errors on the main queue.
            events: RD_KAFKA_EVENT_OFFSET_COMMIT | RD_KAFKA_EVENT_FETCH | RD_KAFKA_EVENT_REBALANCE,
            logger: logger
        )
        consumerQueue = rd_kafka_queue_get_consumer(client.handle)
        client.startPolling { [logger] event in
            guard rd_kafka_event_type(event) == RD_KAFKA_EVENT_OFFSET_COMMIT else { return }
            let err = rd_kafka_event_error(event)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                logger.warning("offset commit failed: \(KafkaError(err))")
            }
        }
    }

    // MARK: - Partitions

    /// Joins the group and consumes `topics`; Kafka splits their partitions among the members.
    public func subscribe(topics: [String]) throws(KafkaError) {
        let list = RDKafkaTopicPartitionList.make(topics.map { TopicPartition(topic: $0, partition: RD_KAFKA_PARTITION_UA) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try KafkaError.check(rd_kafka_subscribe(client.handle, list), "cannot subscribe to \(topics)")
        isSubscribed.store(true, ordering: .releasing)
    }

    /// Replaces the assignment with exactly `partitions`, each starting at its offset
    /// (``KafkaOffset/stored`` for the group's committed offset).
    ///
    /// Fetches the topics' metadata first: librdkafka 2.0.2 otherwise finds no leader for a
    /// new partition and retries its start-offset lookup only after half a second.
    public func assign(_ partitions: [TopicPartitionOffset]) async throws(KafkaError) {
        await client.fetchMetadata(topics: Set(partitions.map(\.topicPartition.topic)), timeout: .seconds(5))
        try RDKafkaTopicPartitionList.with(partitions) { list throws(KafkaError) in
            try KafkaError.check(rd_kafka_assign(client.handle, list), "cannot assign \(partitions)")
        }
        rebalancer.setAssignment(partitions.map(\.topicPartition))
    }

    /// The partitions currently assigned to this consumer.
    public var assignment: [TopicPartition] { rebalancer.assignment.sorted() }

    /// Moves the position of assigned partitions; the next poll returns records from there
    /// (records fetched before the seek are discarded).
    ///
    /// - Parameter timeout: how long to wait for librdkafka to confirm each seek; zero (the
    ///   default) seeks without waiting, and an error then surfaces through ``poll(maxMessages:timeout:)``.
    ///   librdkafka 2.0.2 sometimes confirms late under load, although the seek itself took effect.
    public func seek(_ positions: [TopicPartitionOffset], timeout: Duration = .zero) async throws(KafkaError) {
        let client = client
        let wait = timeout.milliseconds
        try await runBlocking { () throws(KafkaError) in
            try RDKafkaTopicPartitionList.with(positions) { list throws(KafkaError) in
                try KafkaError.check(rd_kafka_seek_partitions(client.handle, list, wait), "cannot seek \(positions)")
                if wait > 0 { _ = try RDKafkaTopicPartitionList.readChecked(list, "cannot seek") }
            }
        }
    }

    /// Stops fetching `partitions` until ``resume(_:)``; their position is kept.
    public func pause(_ partitions: [TopicPartition]) throws(KafkaError) {
        let list = RDKafkaTopicPartitionList.make(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try KafkaError.check(rd_kafka_pause_partitions(client.handle, list), "cannot pause \(partitions)")
        _ = try RDKafkaTopicPartitionList.readChecked(list, "cannot pause")
    }

    /// Fetches `partitions` again after ``pause(_:)``.
    public func resume(_ partitions: [TopicPartition]) throws(KafkaError) {
        let list = RDKafkaTopicPartitionList.make(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try KafkaError.check(rd_kafka_resume_partitions(client.handle, list), "cannot resume \(partitions)")
        _ = try RDKafkaTopicPartitionList.readChecked(list, "cannot resume")
    }

    // MARK: - Polling

    /// Returns the records that have arrived, at most `maxMessages`, waiting up to `timeout`
    /// for the first one. Returns an empty batch when nothing arrived.
    ///
    /// - Throws: a consumer error such as ``KafkaError/Code/offsetOutOfRange`` or
    ///   ``KafkaError/Code/autoOffsetReset`` (records lost to retention), after the records
    ///   that came before it were returned by the previous call.
    public func poll(maxMessages: Int = 1000, timeout: Duration = .milliseconds(100)) async throws(KafkaError) -> [KafkaMessage] {
        if let error = pendingError.withLock({ $0.take() }) { throw error }
        return try await runBlocking(on: pollQueue) { [self] () throws(KafkaError) in
            if isClosed.load(ordering: .relaxed) { throw KafkaError(code: .state, message: "consumer is closed") }
            return isSubscribed.load(ordering: .acquiring)
                ? try pollEvents(maxMessages: maxMessages, timeout: timeout)
                : try pollBatch(maxMessages: maxMessages, timeout: timeout)
        }
    }

    /// With an explicit assignment no rebalance can come: the fast path. Waits up to `timeout`
    /// for the first record only, then takes what is already there: a batch call with a
    /// time-out would wait for a full batch, adding latency whenever traffic is light.
    private func pollBatch(maxMessages: Int, timeout: Duration) throws(KafkaError) -> [KafkaMessage] {
        var raw = [UnsafeMutablePointer<rd_kafka_message_t>?](repeating: nil, count: maxMessages)
        var count = rd_kafka_consume_batch_queue(consumerQueue, timeout.milliseconds, &raw, 1)
        if count == 1, maxMessages > 1 {
            let more = raw.withUnsafeMutableBufferPointer { buffer in
                rd_kafka_consume_batch_queue(consumerQueue, 0, buffer.baseAddress! + 1, maxMessages - 1)
            }
            if more > 0 { count += more }
        }
        if count < 0 { throw KafkaError(code: .state, message: "consumer poll failed") }
        defer { for message in raw[0..<count] { rd_kafka_message_destroy(message) } }
        var messages: [KafkaMessage] = []
        messages.reserveCapacity(count)
        var topics = TopicNameCache()
        for message in raw[0..<count] {
            let message = UnsafePointer(message!)
            switch take(message, topic: topics.name(of: message.pointee.rkt)) {
            case .message(let converted): messages.append(converted)
            case .failed(let error): return try failPoll(messages, error)
            }
        }
        return messages
    }

    /// Drains the consumer queue event by event, so that a batch ends exactly at a rebalance:
    /// every record returned was fetched under the assignment in force when it is returned
    /// (the records before a revoke are dropped; librdkafka fetches them again for the next
    /// owner from the committed offset).
    private func pollEvents(maxMessages: Int, timeout: Duration) throws(KafkaError) -> [KafkaMessage] {
        var messages: [KafkaMessage] = []
        messages.reserveCapacity(min(maxMessages, 10_000))
        var topics = TopicNameCache()
        var wait = timeout.milliseconds
        while messages.count < maxMessages, let event = rd_kafka_queue_poll(consumerQueue, wait) {
            defer { rd_kafka_event_destroy(event) }
            wait = 0  // After the first event, take only what is already there.
            switch rd_kafka_event_type(event) {
            case RD_KAFKA_EVENT_FETCH:
                guard let message = rd_kafka_event_message_next(event) else { continue }
                switch take(message, topic: topics.name(of: message.pointee.rkt)) {
                case .message(let converted): messages.append(converted)
                case .failed(let error): return try failPoll(messages, error)
                }
            case RD_KAFKA_EVENT_REBALANCE:
                let revoked = rebalancer.rebalance(client.handle, rd_kafka_event_error(event), rd_kafka_event_topic_partition_list(event))
                // Records fetched before a revoke are not ours to process any more.
                messages.removeAll { revoked.contains($0.topicPartition) }
                return messages
            case RD_KAFKA_EVENT_ERROR:
                let err = rd_kafka_event_error(event)
                let error = KafkaError(err, context: String(cString: rd_kafka_event_error_string(event)))
                if rd_kafka_event_error_is_fatal(event) != 0 || err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET
                    || err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE {
                    return try failPoll(messages, error)
                }
                logger.warning("consumer error: \(error)")
            default:
                continue
            }
        }
        return messages
    }

    private enum Taken {
        case message(KafkaMessage)
        case failed(KafkaError)
    }

    /// Converts a consumed librdkafka message: a record, a partition-end marker, or an error.
    private func take(_ message: UnsafePointer<rd_kafka_message_t>, topic: String) -> Taken {
        switch message.pointee.err {
        case RD_KAFKA_RESP_ERR_NO_ERROR:
            return .message(Self.makeMessage(message, topic: topic))
        case RD_KAFKA_RESP_ERR__PARTITION_EOF:
            return .message(KafkaMessage(
                topic: topic, partition: message.pointee.partition, offset: message.pointee.offset,
                key: nil, value: nil, isPartitionEOF: true
            ))
        case let err:
            let detail = message.pointee.payload.map { ": " + String(cString: $0.assumingMemoryBound(to: CChar.self)) } ?? ""
            return .failed(KafkaError(err, context: "consuming \(topic)[\(message.pointee.partition)] at offset \(message.pointee.offset)\(detail)"))
        }
    }

    /// Returns the records that came before `error` and keeps the error for the next poll,
    /// or throws it now when there are none.
    private func failPoll(_ messages: [KafkaMessage], _ error: KafkaError) throws(KafkaError) -> [KafkaMessage] {
        logger.error("\(error)")
        guard !messages.isEmpty else { throw error }
        pendingError.withLock { if $0 == nil { $0 = error } }
        return messages
    }

    private static func makeMessage(_ message: UnsafePointer<rd_kafka_message_t>, topic: String) -> KafkaMessage {
        let m = message.pointee
        let key = m.key.map { Data(bytes: $0, count: m.key_len) }
        let value = m.payload.map { Data(bytes: $0, count: m.len) }
        var headers: [KafkaHeader] = []
        var hdrs: OpaquePointer?
        if rd_kafka_message_headers(UnsafeMutablePointer(mutating: message), &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs {
            var index = 0
            var name: UnsafePointer<CChar>?
            var bytes: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(hdrs, index, &name, &bytes, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                headers.append(KafkaHeader(name: String(cString: name!), value: bytes.map { Data(bytes: $0, count: size) }))
                index += 1
            }
        }
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(message, &timestampType)
        return KafkaMessage(
            topic: topic, partition: m.partition, offset: m.offset, key: key, value: value, headers: headers,
            timestampMilliseconds: timestampType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : timestamp
        )
    }

    // MARK: - Offsets

    /// Commits `positions` to the group and waits for the broker's answer. Each offset is the
    /// next record to read (the last processed offset + 1), as Kafka defines it.
    public func commit(_ positions: [TopicPartitionOffset]) async throws(KafkaError) {
        let client = client
        try await runBlocking { () throws(KafkaError) in
            try RDKafkaTopicPartitionList.with(positions) { list throws(KafkaError) in
                try KafkaError.check(rd_kafka_commit(client.handle, list, 0), "cannot commit \(positions)")
                _ = try RDKafkaTopicPartitionList.readChecked(list, "cannot commit")
            }
        }
    }

    /// Sends a commit of `positions` without waiting for it; a failure is logged.
    public func commitAsync(_ positions: [TopicPartitionOffset]) throws(KafkaError) {
        try RDKafkaTopicPartitionList.with(positions) { list throws(KafkaError) in
            try KafkaError.check(rd_kafka_commit(client.handle, list, 1), "cannot commit \(positions)")
        }
    }

    /// The group's committed offsets of `partitions`; ``KafkaOffset/invalid`` where nothing
    /// was committed.
    public func committedOffsets(
        for partitions: [TopicPartition], timeout: Duration = .seconds(5)
    ) async throws(KafkaError) -> [TopicPartition: KafkaOffset] {
        let client = client
        return try await runBlocking { () throws(KafkaError) in
            try RDKafkaTopicPartitionList.with(partitions.map { TopicPartitionOffset($0, offset: .invalid) }) { list throws(KafkaError) in
                try KafkaError.check(rd_kafka_committed(client.handle, list, timeout.milliseconds), "cannot read committed offsets")
                let elements = try RDKafkaTopicPartitionList.readChecked(list, "cannot read committed offset of")
                return Dictionary(elements.map { ($0.topicPartition, $0.offset) }, uniquingKeysWith: { a, _ in a })
            }
        }
    }

    /// Asks the partition's leader for its low and high watermarks.
    public func watermarks(topic: String, partition: Int32, timeout: Duration = .seconds(5)) async throws(KafkaError) -> KafkaWatermarks {
        let client = client
        return try await runBlocking { () throws(KafkaError) in
            var low: Int64 = -1
            var high: Int64 = -1
            try KafkaError.check(
                rd_kafka_query_watermark_offsets(client.handle, topic, partition, &low, &high, timeout.milliseconds),
                "cannot read watermarks of \(topic)[\(partition)]"
            )
            return KafkaWatermarks(low: low, high: high)
        }
    }

    /// The end offset (high watermark: the offset the next record will get) of each partition,
    /// asked of the leaders in one round trip per broker.
    ///
    /// Uses `rd_kafka_offsets_for_times` with the protocol's "latest" timestamp (-1), which
    /// librdkafka batches per leader; `watermarks(topic:partition:)` costs one round trip per
    /// partition, too slow for a sampler over cross-region links.
    public func endOffsets(of partitions: [TopicPartition], timeout: Duration = .seconds(5)) async throws(KafkaError) -> [TopicPartition: Int64] {
        guard !partitions.isEmpty else { return [:] }
        let client = client
        return try await runBlocking { () throws(KafkaError) in
            try RDKafkaTopicPartitionList.with(partitions.map { TopicPartitionOffset($0, offset: .end) }) { list throws(KafkaError) in
                try KafkaError.check(rd_kafka_offsets_for_times(client.handle, list, timeout.milliseconds), "cannot read end offsets")
                let elements = try RDKafkaTopicPartitionList.readChecked(list, "cannot read the end offset of")
                return Dictionary(elements.map { ($0.topicPartition, $0.offset.rawValue) }, uniquingKeysWith: { a, _ in a })
            }
        }
    }

    // MARK: - Closing

    /// Runs `body` with this consumer, then closes it, whether `body` returned or threw: the
    /// way to use a consumer for one short task (reading offsets, reading a topic to its end).
    public func closing<T, E: Error>(after body: (KafkaConsumer) async throws(E) -> T) async throws(E) -> T {
        let result: Result<T, E>
        do throws(E) {
            result = .success(try await body(self))
        } catch {
            result = .failure(error)
        }
        await close()
        return try result.get()
    }

    /// Leaves the group (running the revoke hook), stops fetching and destroys the handle.
    /// Waits for a poll in progress to return first.
    ///
    /// - Important: call exactly once, after the last poll.
    public func close() async {
        guard !isClosed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        try? await runBlocking(on: pollQueue) { [self] in
            // Leaving the group revokes everything; librdkafka does that part itself.
            let assigned = rebalancer.assignment
            if !assigned.isEmpty { rebalancer.handlers.onRevoke(assigned.sorted()) }
            rd_kafka_queue_destroy(consumerQueue)
            let err = rd_kafka_consumer_close(client.handle)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR { logger.warning("closing consumer: \(KafkaError(err))") }
            client.destroy()
        }
    }
}

/// Keeps the assignment and runs the rebalance hooks.
private final class Rebalancer: Sendable {
    let handlers: KafkaConsumer.RebalanceHandlers
    let logger: Logger
    private let assigned = Mutex<Set<TopicPartition>>([])

    init(handlers: KafkaConsumer.RebalanceHandlers, logger: Logger) {
        self.handlers = handlers
        self.logger = logger
    }

    var assignment: Set<TopicPartition> { assigned.withLock { $0 } }

    func setAssignment(_ partitions: [TopicPartition]) {
        assigned.withLock { $0 = Set(partitions) }
    }

    /// Handles a rebalance event on the thread that polls the consumer; returns the partitions
    /// taken away.
    func rebalance(_ rk: OpaquePointer, _ err: rd_kafka_resp_err_t, _ list: RDKafkaTopicPartitionList.Pointer?) -> Set<TopicPartition> {
        guard let list else { return [] }
        let partitions = RDKafkaTopicPartitionList.read(list).map(\.0.topicPartition)
        let isCooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            let starts = handlers.onAssign(partitions)
            if !starts.isEmpty, let elems = list.pointee.elems {
                for i in 0..<Int(list.pointee.cnt) {
                    let tp = TopicPartition(topic: String(cString: elems[i].topic), partition: elems[i].partition)
                    if let start = starts[tp] { elems[i].offset = start.rawValue }
                }
            }
            if isCooperative {
                if let error = rd_kafka_incremental_assign(rk, list) {
                    logger.error("incremental assign failed: \(KafkaError(consuming: error))")
                }
            } else {
                let result = rd_kafka_assign(rk, list)
                if result != RD_KAFKA_RESP_ERR_NO_ERROR { logger.error("assign failed: \(KafkaError(result))") }
            }
            assigned.withLock { $0.formUnion(partitions) }
            logger.info("assigned \(partitions.count) partitions", metadata: ["partitions": "\(partitions.sorted())"])
            return []
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            handlers.onRevoke(partitions)
            if isCooperative {
                if let error = rd_kafka_incremental_unassign(rk, list) {
                    logger.error("incremental unassign failed: \(KafkaError(consuming: error))")
                }
            } else {
                rd_kafka_assign(rk, nil)
            }
            assigned.withLock { $0.subtract(partitions) }
            logger.info("revoked \(partitions.count) partitions")
            return Set(partitions)
        default:
            logger.error("rebalance failed: \(KafkaError(err)); dropping the assignment")
            rd_kafka_assign(rk, nil)
            return assigned.withLock { assignment in
                defer { assignment = [] }
                return assignment
            }
        }
    }
}

extension Optional {
    /// Returns the wrapped value and leaves nil behind.
    fileprivate mutating func take() -> Wrapped? {
        defer { self = nil }
        return self
    }
}
