import ArgumentParser
import GeorepCommandSupport
import GeorepNode
import Logging

/// `georep lag`: the replication lag per source region, target region and partition.
struct LagCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lag",
        abstract: "Show the replication lag per source region, target region and partition.",
        discussion: """
            Like kafka-consumer-groups --describe: APPLIED is the next offset the target's node \
            applies (GET /v1/status), COMMITTED the offset of group georep.apply.<target>, END the \
            partition's end offset, LAG_RECORDS their difference and LAG_MS the age of the oldest \
            unapplied record ('-' where a node or cluster does not answer; warnings follow the table). \
            Exits with status 1 when a node or cluster does not answer.
            """
    )

    @OptionGroup var deployment: DeploymentOptions

    @Flag(help: "Print JSON (rows and problems) instead of a table.")
    var json = false

    @OptionGroup var common: CommonOptions

    func run() async throws {
        let logger = try common.bootstrapLogging(label: "georep.lag", defaultLevel: .error)
        let config = try deployment.load()
        let http = NodeHTTPClient(timeout: .seconds(3))
        let report = await LagReport.collect(config: config, http: http, logger: logger)
        try? await http.shutdown()
        print(json ? report.json : report.table)
        if !report.problems.isEmpty { throw ExitCode(1) }
    }
}
