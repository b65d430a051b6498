import Foundation
import GeorepKafka
import GeorepModel
public import Logging
import Synchronization

/// Follows `georep.control` from its beginning for a node and hands every change of the
/// control state to `onChange` (the node applies it with ``RegionNode/updateRole(_:)``).
///
/// ``pause()`` is an admin hook: the reader stops reading as if the node were cut off from the
/// control topic's cluster (the split-brain test uses it); ``resume()`` reconnects it.
public final class ControlReader: Sendable {
    private let log: ControlLog
    private let region: String
    private let logger: Logger
    private let onChange: @Sendable (ControlState) async -> Void
    private let state = Mutex(ControlState())
    private let paused = Atomic<Bool>(false)
    /// Where ``run()`` starts: after the records ``catchUp(timeout:)`` read. Reading them again
    /// on top of its state would replay older records of the same epoch (a drained primary would
    /// take writes again until the record that stopped it came back round).
    private let caughtUpTo = Atomic<Int64>(0)

    /// A reader of `log` for `region`'s node.
    public init(log: ControlLog, region: String, logger: Logger, onChange: @escaping @Sendable (ControlState) async -> Void) {
        self.log = log
        self.region = region
        self.logger = logger
        self.onChange = onChange
    }

    /// The control state read so far.
    public var current: ControlState { state.withLock { $0 } }

    /// Whether reading is paused.
    public var isPaused: Bool { paused.load(ordering: .relaxed) }

    /// Stops reading until ``resume()``.
    public func pause() { paused.store(true, ordering: .relaxed) }

    /// Reads again.
    public func resume() { paused.store(false, ordering: .relaxed) }

    /// Reads the log up to its end once (before the node starts serving), applying what it says.
    public func catchUp(timeout: Duration) async {
        do {
            let (read, next) = try await log.readToEnd(timeout: timeout)
            caughtUpTo.store(next, ordering: .relaxed)
            guard read != ControlState() else { return }
            state.withLock { $0 = read }
            await onChange(read)
        } catch {
            logger.warning("cannot read \(ControlLog.partition.topic) at start; the configuration's roles apply until it is readable: \(error)")
        }
    }

    /// Follows the log until cancelled.
    public func run() async {
        var consumer: KafkaConsumer?
        var next = caughtUpTo.load(ordering: .relaxed)
        // Records a poll returned after a pause began: applied only once reading resumes.
        var held: [KafkaMessage] = []
        var isFailing = false
        while !Task.isCancelled {
            if isPaused {
                try? await Task.sleep(for: .milliseconds(50))
                continue
            }
            do {
                if consumer == nil {
                    let made = try await log.makeConsumer(clientID: "georep-control-\(region)")
                    consumer = made
                    if next > 0 { try await made.seek([TopicPartitionOffset(ControlLog.partition, offset: KafkaOffset(next))]) }
                }
                guard let consumer else { continue }
                var messages = held + (try await consumer.poll(maxMessages: 100, timeout: .milliseconds(100)))
                held = []
                if isPaused {
                    held = messages
                    messages = []
                }
                var changed = false
                var snapshot = ControlState()
                for message in messages where !message.isPartitionEOF && message.offset >= next {
                    next = message.offset + 1
                    guard let value = message.value, let record = RegionControlRecord.decode(value) else {
                        logger.warning("ignored a record of \(ControlLog.partition.topic) at offset \(message.offset): not a RegionConfig record")
                        continue
                    }
                    snapshot = state.withLock { state in
                        let before = state
                        state.take(record)
                        changed = changed || before != state
                        return state
                    }
                }
                if changed { await onChange(snapshot) }
                if isFailing {
                    isFailing = false
                    logger.notice("reading \(ControlLog.partition.topic) again")
                }
            } catch {
                // Once per outage at warning level, then at debug level while it lasts.
                logger.log(level: isFailing ? .debug : .warning, "reading \(ControlLog.partition.topic) failed, retrying: \(error)")
                isFailing = true
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        await consumer?.close()
    }
}
