public import Foundation

/// A child process, of the harness and of the process tests: its standard output read line by
/// line, its standard input writable, its standard error appended to a log file. Signals go to
/// its children too (a launcher such as `faketime` runs the command as its child).
public final class ChildProcess: @unchecked Sendable {
    /// What it is called in errors.
    public let name: String
    private let process = Process()
    private let output = Pipe()
    private let input = Pipe()
    private let lock = NSLock()
    private var lines: [String] = []
    private var partial = Data()

    /// Starts `executable arguments...` (through `/usr/bin/env launcher...` when `launcher` is
    /// not empty), appending its standard error to `log` (when given).
    public init(name: String, executable: String, arguments: [String], launcher: [String] = [], log: URL?) throws {
        self.name = name
        if launcher.isEmpty {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = launcher + [executable] + arguments
        }
        if let log {
            if !FileManager.default.fileExists(atPath: log.path) { _ = FileManager.default.createFile(atPath: log.path, contents: nil) }
            let handle = try FileHandle(forWritingTo: log)
            try handle.seekToEnd()
            process.standardError = handle
        }
        process.standardOutput = output
        process.standardInput = input
        try process.run()
        let reading = output.fileHandleForReading
        // A blocking read on a thread of its own, until the output ends. Not a
        // `readabilityHandler`: tearing its dispatch source down races libdispatch's epoll
        // bookkeeping on Linux and now and then crashed the process reading
        // (swift-corelibs-libdispatch issue 949).
        let reader = Thread { [weak self] in
            while true {
                let chunk = reading.availableData  // blocks until output or its end
                guard !chunk.isEmpty, let self else { return }
                self.append(chunk)
            }
        }
        reader.name = "torture-\(name)-output"
        reader.start()
    }

    private func append(_ chunk: Data) {
        lock.withLock {
            partial += chunk
            while let newline = partial.firstIndex(of: UInt8(ascii: "\n")) {
                lines.append(String(decoding: partial[partial.startIndex..<newline], as: UTF8.self))
                partial = Data(partial[(newline + 1)...])
            }
        }
    }

    /// Whether it runs.
    public var isRunning: Bool { process.isRunning }

    /// The exit status, once it exited (-1 before).
    public var exitStatus: Int32 { process.isRunning ? -1 : process.terminationStatus }

    /// Every line of standard output so far.
    public var allLines: [String] { lock.withLock { lines } }

    /// Waits for a line of standard output starting with `prefix`, after the first `skipping` lines.
    public func waitForLine(startingWith prefix: String, skipping: Int = 0, timeout: Duration = .seconds(60)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let line = (lock.withLock { lines.dropFirst(skipping).first { $0.hasPrefix(prefix) } }) { return line }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let state = process.isRunning ? "running" : "exited with \(process.terminationStatus)"
        throw TortureError("\(name) (\(process.arguments?.joined(separator: " ") ?? "")) printed no line starting with '\(prefix)' within \(timeout) (\(state))")
    }

    /// Writes a line to its standard input and waits for its answer line.
    public func command(_ line: String, timeout: Duration = .seconds(5)) async throws -> String {
        let seen = allLines.count
        input.fileHandleForWriting.write(Data((line + "\n").utf8))
        return try await waitForLine(startingWith: "", skipping: seen, timeout: timeout)
    }

    /// Sends `signal` to the process and its children.
    public func signal(_ signal: Int32) {
        guard process.isRunning else { return }
        for child in children { kill(child, signal) }
        kill(process.processIdentifier, signal)
    }

    /// Waits for the exit, sending SIGKILL after `timeout`; returns the exit status.
    @discardableResult
    public func waitForExit(timeout: Duration) async -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline { signal(SIGKILL) }
            try? await Task.sleep(for: .milliseconds(20))
        }
        try? await Task.sleep(for: .milliseconds(100))  // the reader takes the last output
        return process.terminationStatus
    }

    /// Stops it: `signal`, then SIGKILL after `timeout`; returns the exit status.
    ///
    /// A launcher's children are signalled first, and the launcher given a moment to exit by
    /// itself: `faketime` killed before its child leaves a named semaphore behind, and a later
    /// `faketime` that gets the same process id cannot start.
    @discardableResult
    public func stop(signal stopSignal: Int32 = SIGTERM, timeout: Duration = .seconds(30)) async -> Int32 {
        let kids = children
        if process.isRunning, !kids.isEmpty {
            for child in kids { kill(child, stopSignal) }
            let grace = ContinuousClock.now + .seconds(2)
            while process.isRunning, ContinuousClock.now < grace { try? await Task.sleep(for: .milliseconds(20)) }
        }
        signal(stopSignal)
        return await waitForExit(timeout: timeout)
    }

    private var children: [pid_t] {
        let pid = process.processIdentifier
        let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
        return text.split(separator: " ").compactMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    deinit {
        if process.isRunning {
            for child in children { kill(child, SIGKILL) }
            kill(process.processIdentifier, SIGKILL)
        }
    }
}

/// Why the harness itself could not run (not an anomaly of georep).
struct TortureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
