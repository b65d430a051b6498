import ArgumentParser
import GeorepCommandSupport
import GeorepNode
import Logging

/// `georep failover`: promotes a region to primary with the RPO check and fencing.
struct FailoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failover",
        abstract: "Promote a region to primary (single-primary topology), with the RPO check and fencing.",
        discussion: """
            When the old primary's node answers, a planned switchover: it stops taking writes, the \
            target applies everything it wrote, then the target is promoted; nothing is lost. \
            Otherwise an unplanned failover: the target's lag behind the old primary's topic is \
            measured and the failover is refused when it exceeds --max-data-loss-ms, unless \
            --force, which lists the offsets not applied. Either way georep.control receives the \
            new epoch and the fence point (the old primary's topic end offsets): every node \
            dead-letters older-epoch events past it, and the old primary refuses writes. Prints \
            each step's time and the total (RTO).
            """
    )

    @OptionGroup var deployment: DeploymentOptions

    @Option(help: "The region to promote.")
    var to: String

    @Option(help: "The most data loss allowed, in milliseconds (the age of the target's oldest unapplied event of the old primary); 0 allows none.")
    var maxDataLossMs: Int64 = 0

    @Flag(help: "Promote even when the target's lag exceeds --max-data-loss-ms.")
    var force = false

    @OptionGroup var common: CommonOptions

    func run() async throws {
        let logger = try common.bootstrapLogging(label: "georep.failover", defaultLevel: .error)
        let config = try deployment.load()
        var options = Failover.Options(target: to)
        options.maxDataLossMillis = maxDataLossMs
        options.force = force
        let http = NodeHTTPClient(timeout: .seconds(2))
        printFlushed("failover to \(to):")
        let result: Result<Failover.Outcome, FailoverError>
        do {
            result = .success(try await Failover(config: config, options: options, http: http, logger: logger, say: printFlushed).run())
        } catch {
            result = .failure(error)
        }
        try? await http.shutdown()
        switch result {
        case let .success(outcome):
            printFlushed("\(outcome.isPlanned ? "planned switchover" : "unplanned failover"): \(to) is primary at epoch \(outcome.epoch); \(outcome.fence)")
        case let .failure(error):
            printFlushed("error: \(error)")
            throw ExitCode(error.isDataLoss ? 3 : 1)
        }
    }
}

extension FailoverError {
    var isDataLoss: Bool {
        if case .dataLoss = self { return true }
        return false
    }
}
