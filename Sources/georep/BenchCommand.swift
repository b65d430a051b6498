import ArgumentParser

/// `georep bench`: benchmarks that print figures (never timed unit tests).
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks: throughput and latency figures measured on this machine.",
        discussion: "Absolute figures vary with the machine; compare the ratios measured in one run.",
        subcommands: [EndToEndBench.self, ApplyBench.self, LagBench.self, KafkaBench.self, ReadBench.self],
        defaultSubcommand: EndToEndBench.self
    )
}
