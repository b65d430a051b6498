import ArgumentParser
import GeorepCommandSupport
import Logging

/// `georep bench` without a subcommand: `bench apply` then `bench lag`, with defaults that a
/// small (two-core) machine sustains.
struct EndToEndBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "e2e",
        abstract: "End-to-end throughput (bench apply) and replication lag percentiles (bench lag), one after the other.",
        discussion: """
            The defaults fit a two-core machine: 1,000,000 events for the apply throughput and three \
            regions writing 500 events/s each for 30 s for the lag (bench lag alone defaults to 5,000/s, \
            which such a machine does not sustain). Each benchmark has more options: \
            georep bench apply --help, georep bench lag --help.
            """
    )

    @Option(help: "Events of the apply throughput benchmark.")
    var records: Int = 1_000_000

    @Option(help: "Distinct keys of both benchmarks.")
    var keys: Int = 100_000

    @Option(help: "Writes per second in each region, in the lag benchmark.")
    var rate: Int = 500

    @Option(help: "Seconds of writing in the lag benchmark.")
    var duration: Int = 30

    @Option(help: "The kcat executable.")
    var kcat: String = "kcat"

    @OptionGroup var common: CommonOptions

    func run() async throws {
        let logger = try common.bootstrapLogging(label: "georep.bench")
        // The benchmarks parse their own defaults; only the options above are passed on.
        let apply = try ApplyBench.parse(["--records", "\(records)", "--keys", "\(keys)", "--kcat", kcat])
        let lag = try LagBench.parse(["--rate", "\(rate)", "--duration", "\(duration)", "--keys", "\(keys)"])
        try await apply.measure(logger: logger)
        print("")
        try await lag.measure(logger: logger)
    }
}
