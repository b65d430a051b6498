import ArgumentParser
import Foundation
import GeorepCommandSupport
import GeorepEngine
import GeorepKafka
import GeorepModel
import Logging
import Synchronization

/// `georep tail`: a region's change events, decoded, one per line, as they arrive.
struct TailCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "Print a region's change events decoded, one per line, as they arrive (like kcat -C, but readable).",
        discussion: """
            Each line: HLC wall time, partition@offset, origin region and writer epoch, operation, \
            table/key, and the columns it sets. A record that is not a valid change event is printed \
            with the reason the appliers refuse it. Reads the change topic from the region's own \
            Kafka cluster without joining a consumer group, so it never disturbs the appliers.
            """
    )

    @OptionGroup var deployment: DeploymentOptions

    @Option(help: "The region whose change topic to read.")
    var region: String

    @Flag(help: "Start at the beginning of the topic instead of its end.")
    var fromBeginning = false

    @Flag(help: "Read the region's pinned topic instead of its change topic.")
    var pinned = false

    @Option(help: "Stop after this many records.")
    var count: Int?

    @OptionGroup var common: CommonOptions

    func run() async throws {
        let logger = try common.bootstrapLogging(label: "georep.tail")
        let config = try deployment.load()
        guard let source = config.region(id: region) else {
            throw ValidationError("unknown region \(region); the configuration has \(config.regions.map(\.id).joined(separator: ", "))")
        }
        let topic = pinned ? Topics.pinned(region) : Topics.changes(region)
        let consumer = try KafkaConsumer(
            configuration: config.consumerConfiguration(source.kafka, groupID: "georep.tail.\(UUID().uuidString)", clientID: "georep-tail"),
            logger: logger)
        try await consumer.assign(Topics.partitions(of: topic, in: config).map {
            TopicPartitionOffset($0, offset: fromBeginning ? .beginning : .end)
        })
        let codec = ChangeEventCodec(config: config)
        let stopped = StopFlag()
        let signals = Task {
            _ = await waitForTerminationSignal()
            stopped.set()
        }
        var printed = 0
        var failure: (any Error)?
        do {
            while !stopped.isSet, printed < (count ?? .max) {
                let messages = try await consumer.poll(maxMessages: 500, timeout: .milliseconds(200))
                for message in messages.prefix((count ?? .max) - printed) {
                    printFlushed(Self.line(message, codec: codec))
                    printed += 1
                }
            }
        } catch {
            failure = error
        }
        signals.cancel()
        await consumer.close()
        if let failure { throw failure }
    }

    /// One readable line for a record of a change topic.
    static func line(_ message: KafkaMessage, codec: ChangeEventCodec) -> String {
        let position = "p\(message.partition)@\(message.offset)"
        guard let value = message.value else { return "\(position) tombstone key=\(message.key.map { String(decoding: $0, as: UTF8.self) } ?? "-")" }
        let event: ChangeEvent
        do {
            event = try codec.decode(value, logTimestampMillis: nil)
        } catch {
            return "\(position) REFUSED (\(error.code)): \(error)"
        }
        let time = Date(timeIntervalSince1970: Double(event.hlc.millis) / 1000)
        var line = "\(time.formatted(.iso8601.time(includingFractionalSeconds: true))) \(position) \(event.origin) e\(event.epoch) \(event.op.rawValue) \(event.table)/\(codec.config.table(named: event.table)?.keyText(event.key) ?? JSONValue.object(event.key).jsonText)"
        if !event.columns.isEmpty { line += " " + JSONValue.object(event.columns).jsonText }
        return line
    }
}

/// Set once, from any task: a SIGINT or SIGTERM asked a loop to stop.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() { flag.store(true, ordering: .relaxed) }
}
