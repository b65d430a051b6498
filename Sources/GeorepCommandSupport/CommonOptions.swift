public import ArgumentParser
import GeorepKafka
public import Logging

/// Options every command shares.
public struct CommonOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error or critical (default: info; warning for the demo).")
    var logLevel: String?

    /// No level given: each command's default.
    public init() {}

    /// Sends logs to standard error at the chosen level, `defaultLevel` unless one was given
    /// (standard output stays for results), and logs the librdkafka version.
    public func bootstrapLogging(label: String, defaultLevel: Logger.Level = .info) throws -> Logger {
        guard let level = logLevel.map({ Logger.Level(rawValue: $0) }) ?? defaultLevel else {
            throw ValidationError("unknown log level '\(logLevel ?? "")'")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: label)
        logger.debug("librdkafka \(Librdkafka.version)")
        return logger
    }
}
