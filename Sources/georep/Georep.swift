import ArgumentParser
import GeorepBench

@main
struct Georep: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "georep",
        abstract: "Keeps a database's rows synchronized across regions through Kafka.",
        subcommands: [
            NodeCommand.self,
            TailCommand.self,
            DemoCommand.self,
            DevBrokerCommand.self,
            BenchCommand.self,
            ApplyCommand.self,
            LagCommand.self,
            FailoverCommand.self,
            TortureCommand.self,
        ]
    )
}
