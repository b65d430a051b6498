import Dispatch
import Foundation
import Synchronization

/// Waits until the process receives SIGINT or SIGTERM.
func waitForTerminationSignal() async -> Int32 {
    await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
        let once = OnceResumer(continuation)
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            // Made under the lock: a source is not Sendable, so it goes into the guarded list
            // from where it was made.
            retainedSignalSources.withLock { sources in
                let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .main)
                source.setEventHandler { once.resume(signalNumber) }
                source.resume()
                sources.append(source)
            }
        }
    }
}

/// The signal sources of ``waitForTerminationSignal()``, kept alive for the process's lifetime.
private let retainedSignalSources = Mutex<[any DispatchSourceSignal]>([])

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
