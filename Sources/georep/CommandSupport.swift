import ArgumentParser
import Dispatch
import Foundation
import GeorepKafka
import Logging

/// Options every command shares.
struct CommonOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error or critical (default: info; warning for the demo).")
    var logLevel: String?

    /// Sends logs to standard error at the chosen level, `defaultLevel` unless one was given
    /// (standard output stays for results), and logs the librdkafka version.
    func bootstrapLogging(label: String, defaultLevel: Logger.Level = .info) throws -> Logger {
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

/// Waits until the process receives SIGINT or SIGTERM.
func waitForTerminationSignal() async -> Int32 {
    await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
        let once = OnceResumer(continuation)
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .main)
            source.setEventHandler { once.resume(signalNumber) }
            source.resume()
            retainedSignalSources.append(source)
        }
    }
}

private nonisolated(unsafe) var retainedSignalSources: [any DispatchSourceSignal] = []

private final class OnceResumer: @unchecked Sendable {
    private var continuation: CheckedContinuation<Int32, Never>?
    private let lock = NSLock()
    init(_ continuation: CheckedContinuation<Int32, Never>) { self.continuation = continuation }
    func resume(_ value: Int32) {
        lock.lock()
        let pending = continuation
        continuation = nil
        lock.unlock()
        pending?.resume(returning: value)
    }
}

/// Writes a line to standard output and flushes it, so that a parent process reading a pipe
/// sees it at once.
func printFlushed(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
