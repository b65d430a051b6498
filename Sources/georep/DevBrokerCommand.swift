import ArgumentParser
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
        logger.info(
            "development broker running",
            metadata: ["bootstrap": "\(broker.bootstrapServers)", "brokers": "\(brokers)", "topics": "\(wanted.count)"]
        )
        let signalNumber = await waitForTerminationSignal()
        logger.info("stopping on signal \(signalNumber)")
        broker.shutdown()
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
