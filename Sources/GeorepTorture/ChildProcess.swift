import Foundation

/// A child process of the harness: its standard output read line by line, its standard input
/// writable, its standard error appended to a log file. Signals go to its children too (a
/// launcher such as `faketime` runs the command as its child).
final class ChildProcess: @unchecked Sendable {
    let name: String
    private let process = Process()
    private let output = Pipe()
    private let input = Pipe()
    private let lock = NSLock()
    private var lines: [String] = []
    private var partial = Data()

    /// Starts `executable arguments...` (through `/usr/bin/env launcher...` when `launcher` is not empty).
    init(name: String, executable: String, arguments: [String], launcher: [String] = [], log: URL) throws {
        self.name = name
        if launcher.isEmpty {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = launcher + [executable] + arguments
        }
        if !FileManager.default.fileExists(atPath: log.path) { _ = FileManager.default.createFile(atPath: log.path, contents: nil) }
        let handle = try FileHandle(forWritingTo: log)
        try handle.seekToEnd()
        process.standardError = handle
        process.standardOutput = output
        process.standardInput = input
        try process.run()
        let reading = output.fileHandleForReading
        let reader = Thread { [weak self] in
            while true {
                let chunk = reading.availableData
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

    var isRunning: Bool { process.isRunning }

    /// The exit status, once it exited.
    var exitStatus: Int32 { process.isRunning ? -1 : process.terminationStatus }

    /// Every line of standard output so far.
    var allLines: [String] { lock.withLock { lines } }

    /// Waits for a line of standard output starting with `prefix`, after the first `skipping` lines.
    func waitForLine(startingWith prefix: String, skipping: Int = 0, timeout: Duration) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let line = (lock.withLock { lines.dropFirst(skipping).first { $0.hasPrefix(prefix) } }) { return line }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TortureError("\(name) printed no line starting with '\(prefix)' within \(timeout) (running: \(process.isRunning))")
    }

    /// Writes a line to its standard input and waits for its answer line.
    func command(_ line: String, timeout: Duration = .seconds(5)) async throws -> String {
        let seen = allLines.count
        input.fileHandleForWriting.write(Data((line + "\n").utf8))
        return try await waitForLine(startingWith: "", skipping: seen, timeout: timeout)
    }

    /// Sends `signal` to the process and its children.
    func signal(_ signal: Int32) {
        guard process.isRunning else { return }
        for child in children { kill(child, signal) }
        kill(process.processIdentifier, signal)
    }

    /// Waits for the exit, sending SIGKILL after `timeout`.
    func waitForExit(timeout: Duration) async {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline { signal(SIGKILL) }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Stops it: `signal`, then SIGKILL after `timeout`.
    func stop(signal stopSignal: Int32 = SIGTERM, timeout: Duration = .seconds(10)) async {
        signal(stopSignal)
        if stopSignal == SIGSTOP { return }
        await waitForExit(timeout: timeout)
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
