import ArgumentParser
import GeorepModel
import GeorepNode
import Logging

/// Options that name a deployment: its configuration file, and an override of the Kafka
/// bootstrap servers for the development broker (whose port is chosen when it starts).
struct DeploymentOptions: ParsableArguments {
    @Option(help: "The georep configuration file (YAML).")
    var config: String

    @Option(help: "Bootstrap servers to use for every region instead of the configuration's (e.g. the development broker's).")
    var kafka: String?

    /// The configuration, with the override applied.
    func load() throws -> GeorepConfig {
        var parsed = try GeorepConfig.load(path: config)
        if let kafka {
            parsed.regions = parsed.regions.map { region in
                var region = region
                region.kafka = kafka
                return region
            }
            parsed.controlKafka = kafka
        }
        return parsed
    }
}

/// `georep node`: one region's node in the foreground.
struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Run one region's node: applier, writer, HTTP API and lag monitor.",
        discussion: """
            Prints `listening on http://HOST:PORT` on standard output once the HTTP API is up. \
            SIGTERM or SIGINT stops it in order: the HTTP API stops taking requests and finishes \
            those in flight, the applier finishes and commits its batch, the producer flushes, the \
            store closes.
            """
    )

    @OptionGroup var deployment: DeploymentOptions

    @Option(help: "The region this node serves.")
    var region: String

    @OptionGroup var common: CommonOptions

    func run() async throws {
        let logger = try common.bootstrapLogging(label: "georep.node.\(region)")
        let config = try deployment.load()
        var settings = RegionNode.Settings()
        settings.onListening = { address in printFlushed("listening on http://\(address)") }
        let node = try await RegionNode(config: config, region: region, settings: settings, logger: logger)
        try await node.run(signals: [.sigterm, .sigint])
    }
}
