import ArgumentParser
import Foundation
import GeorepCommandSupport
import GeorepEngine
import GeorepKafka
import GeorepModel
import Logging

/// `georep dev-broker`: runs the development broker in the foreground.
struct DevBrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev-broker",
        abstract: "Run the development broker (librdkafka's mock cluster) on loopback.",
        discussion: """
            Prints the bootstrap servers on the first line of standard output, for nodes and for \
            kcat (kcat -b <bootstrap> -L), then runs until SIGINT or SIGTERM. The development \
            broker has no CreateTopics: name the topics here, or give a configuration file to \
            create every georep topic of its regions.
            """
    )

    @Option(help: "Number of brokers.")
    var brokers: Int = 1

    @Option(help: "Topics to create, as name:partitions[,name:partitions...].")
    var topics: String?

    @Option(help: "A georep configuration file: creates the change, pinned and dead-letter topics of every region and the control and directory topics.")
    var config: String?

    @Flag(help: """
        Take fault commands from standard input, one per line: 'down' and 'up' (every broker),         'rtt MS' (round-trip time of every broker), 'errors N' (the next N produce and fetch         requests fail with retriable errors), 'clear'. Each is answered 'ok' or 'error: ...'.
        """)
    var commands = false

    @OptionGroup var common: CommonOptions

    func run() async throws {
        let logger = try common.bootstrapLogging(label: "georep.dev-broker")
        var wanted = try Self.parseTopics(topics ?? "")
        if let config {
            // Every topic of the deployment, whichever cluster the configuration puts it on.
            wanted += Topics.required(by: try GeorepConfig.load(path: config)).map { ($0.name, $0.partitions) }
        }
        let broker = try DevelopmentBroker(brokers: brokers, logger: logger)
        for (name, partitions) in wanted {
            try broker.createTopic(name, partitions: partitions, replicationFactor: min(brokers, 3))
        }
        printFlushed(broker.bootstrapServers)
        if commands { Self.followCommands(broker, brokers: brokers) }
        logger.info(
            "development broker running",
            metadata: ["bootstrap": "\(broker.bootstrapServers)", "brokers": "\(brokers)", "topics": "\(wanted.count)"]
        )
        let signalNumber = await waitForTerminationSignal()
        logger.info("stopping on signal \(signalNumber)")
        await broker.shutdown()
    }

    /// Reads fault commands from standard input on a thread of its own until it ends.
    private static func followCommands(_ broker: DevelopmentBroker, brokers: Int) {
        let ids = (1...Int32(max(1, brokers)))
        let thread = Thread {
            while let line = readLine() {
                let words = line.split(separator: " ")
                do throws(KafkaError) {
                    switch (words.first, words.count) {
                    case ("down", 1): for id in ids { try broker.setBrokerDown(id) }
                    case ("up", 1): for id in ids { try broker.setBrokerUp(id) }
                    case ("rtt", 2) where Int(words[1]) != nil:
                        for id in ids { try broker.setRoundTripTime(Int(words[1])!, broker: id) }
                    case ("errors", 2) where Int(words[1]) != nil:
                        // Produce (0) and Fetch (1): NOT_ENOUGH_REPLICAS and NOT_LEADER_FOR_PARTITION, both retriable.
                        let count = Int(words[1])!
                        broker.pushRequestErrors(apiKey: 0, Array(repeating: KafkaError.Code(rawValue: 19), count: count))
                        broker.pushRequestErrors(apiKey: 1, Array(repeating: KafkaError.Code(rawValue: 6), count: count))
                    case ("clear", 1):
                        broker.clearRequestErrors(apiKey: 0)
                        broker.clearRequestErrors(apiKey: 1)
                    default:
                        printFlushed("error: unknown command '\(line)'")
                        continue
                    }
                    printFlushed("ok")
                } catch {
                    printFlushed("error: \(error)")
                }
            }
        }
        thread.name = "dev-broker-commands"
        thread.start()
    }

    /// Parses `name:partitions,...`.
    static func parseTopics(_ text: String) throws -> [(String, Int)] {
        try text.split(separator: ",").map { item in
            let parts = item.split(separator: ":")
            guard parts.count == 2, !parts[0].isEmpty, let partitions = Int(parts[1]), partitions > 0 else {
                throw ValidationError("--topics: '\(item)' is not name:partitions (partitions a positive number)")
            }
            return (String(parts[0]), partitions)
        }
    }
}
