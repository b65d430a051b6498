public import ArgumentParser

/// `georep bench`: benchmarks that print figures (never timed unit tests).
public struct BenchCommand: AsyncParsableCommand {
    /// The `bench` command and its subcommands, `e2e` by default.
    public static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks: throughput and latency figures measured on this machine.",
        discussion: "Absolute figures vary with the machine; compare the ratios measured in one run.",
        subcommands: [EndToEndBench.self, ApplyBench.self, LagBench.self, KafkaBench.self, ReadBench.self],
        defaultSubcommand: EndToEndBench.self
    )

    /// The command as parsed from no arguments (it only dispatches to a subcommand).
    public init() {}
}
