import ArgumentParser
import GeorepCommandSupport
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

    func validate() throws {
        if let kafka, kafka.allSatisfy(\.isWhitespace) {
            throw ValidationError("--kafka is empty: give the bootstrap servers, host:port[,host:port...]")
        }
    }

    /// The configuration, with the override applied.
    func load() throws -> GeorepConfig {
        let parsed = try GeorepConfig.load(path: config)
        return kafka.map(parsed.onOneCluster) ?? parsed
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

    @Option(help: "Sticky reads: for this many seconds after a write by a user (request header georep-user), the user's reads go to the region that published it.")
    var stickySeconds: Double?

    @Option(help: "How long a read carrying georep-token waits for this region to apply the tokens before the origin region serves it, in milliseconds.")
    var readWaitMs: Int = 1000

    @Option(help: "Scale-out: this process's name among the region's node processes. They share the region's source partitions (consumer group georep.apply.<region>) and store, which must be PostgreSQL; each has its own counter slot.")
    var instance: String?

    @Option(help: "Where this process's HTTP API listens (host:port), instead of the region's http address (for a second process of a region).")
    var listen: String?

    @Flag(help: "Serve the operator hooks under /v1/admin (pause the applier or the control reader; no authentication: for test and staging deployments).")
    var admin = false

    @OptionGroup var common: CommonOptions

    func validate() throws {
        if let instance, !ChangeEvent.isValidWriter("\(region).\(instance)") || instance.contains("~") {
            throw ValidationError("--instance must be a name of letters, digits, '.', '_' or '-' (it names a counter slot)")
        }
        if let listen, HostPort(parsing: listen) == nil { throw ValidationError("--listen must be host:port, not '\(listen)'") }
        if let stickySeconds, stickySeconds <= 0 { throw ValidationError("--sticky-seconds must be positive") }
        guard readWaitMs >= 0 else { throw ValidationError("--read-wait-ms must not be negative") }
    }

    func run() async throws {
        let logger = try common.bootstrapLogging(label: "georep.node.\(region)")
        let config = try deployment.load()
        var settings = RegionNode.Settings()
        settings.stickyReadWindow = stickySeconds.map { .milliseconds(Int64($0 * 1000)) }
        settings.readYourWritesWait = .milliseconds(readWaitMs)
        settings.listenAddress = listen.flatMap(HostPort.init(parsing:))
        settings.servesAdminEndpoints = admin
        if let instance {
            guard case .postgres = config.region(id: region)?.store else {
                throw ValidationError("--instance: several processes of region \(region) must share a PostgreSQL store, not \(config.region(id: region)?.store.description ?? "none")")
            }
            settings.writerID = "\(region).\(instance)"
            settings.applier.sharesPartitions = true
            settings.sampler.readsStorePositions = true
        }
        settings.onListening = { address in printFlushed("listening on http://\(address)") }
        let node = try await RegionNode(config: config, region: region, settings: settings, logger: logger)
        try await node.run(signals: [.sigterm, .sigint])
    }
}
