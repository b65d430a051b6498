import ArgumentParser
import GeorepEngine
import GeorepModel
import GeorepStore
import Logging

/// `georep apply-worker --config FILE --region ID` (hidden): runs only a region's applier,
/// until killed. The crash tests SIGKILL it at random points.
struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply-worker",
        abstract: "Runs one region's applier alone (for crash tests).",
        shouldDisplay: false
    )

    @Option(help: "The configuration file.")
    var config: String

    @Option(help: "The region whose store is filled.")
    var region: String

    func run() async throws {
        let configuration = try GeorepConfig.load(path: config)
        guard let own = configuration.region(id: region) else { throw ValidationError("region \(region) is not in \(config)") }
        var logger = Logger(label: "georep.apply-worker")
        logger.logLevel = .warning
        let store = try await makeReplicaStore(at: own.store, config: configuration, logger: logger)
        let clock = HybridLogicalClock(maxOffsetMillis: configuration.hlcMaxOffsetMillis, floor: try await store.highWaterMark())
        let applier = try Applier(region: region, config: configuration, store: store, clock: clock, logger: logger)
        try await applier.run()
    }
}
