import Foundation
import GRDB
import Logging
import Synchronization

/// Copies the WAL back into the database file on a thread of its own, so that commits do
/// not pay for it.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses the threshold: that
/// commit writes thousands of pages to the database file and syncs it, and every write
/// waiting behind it waits too (a 10,000-page checkpoint held writes for 50 to 150 ms). Here
/// the writer connection does not checkpoint; every ``interval`` a second connection makes a
/// passive checkpoint, which runs alongside the writer. Commits made meanwhile stay in the
/// WAL, and SQLite starts the WAL over only once every frame was copied: so when the WAL has
/// grown past ``restartPages``, one more passive checkpoint runs in the writer's turn, where
/// it copies just the frames committed during the first, and the next commit restarts the WAL.
final class WALCheckpointer: Sendable {
    /// How often the background connection checkpoints.
    static let interval = 0.1
    /// Busy checkpoints in a row (one every ``interval``) before each warning.
    static let busyTriesBeforeWarning = 50

    private let connection: DatabaseQueue
    private let writer: DatabasePool
    private let restartPages: Int
    private let logger: Logger
    /// Wakes the thread from its wait between checkpoints (only ``requestStop()`` signals it).
    private let wake = DispatchSemaphore(value: 0)
    private let isStopping = Atomic<Bool>(false)
    /// The callers of ``stop()`` waiting for the thread to end, then how its end went.
    private let ending = Mutex<Ending>(.running(waiters: []))

    private enum Ending {
        case running(waiters: [CheckedContinuation<Void, any Error>])
        /// The thread has ended; closing its connection gave this.
        case ended(Result<Void, any Error>)
    }

    /// Starts checkpointing the database at `path`, whose writes go through `writer`.
    init(path: String, writer: DatabasePool, restartPages: Int, busyTimeoutSeconds: Double, logger: Logger) throws {
        var configuration = Configuration()
        configuration.label = "georep.checkpoint"
        configuration.busyMode = .timeout(busyTimeoutSeconds)
        connection = try DatabaseQueue(path: path, configuration: configuration)
        self.writer = writer
        self.restartPages = restartPages
        self.logger = logger
        let thread = Thread { [self] in run() }
        thread.name = "georep-checkpoint"
        thread.start()
    }

    /// The thread: checkpoints until asked to stop, closes its connection, then wakes the
    /// callers of ``stop()``.
    private func run() {
        checkpointUntilStopped()
        let closed = Result { try connection.close() }
        let waiters: [CheckedContinuation<Void, any Error>] = ending.withLock { state in
            guard case let .running(waiters) = state else { return [] }
            state = .ended(closed)
            return waiters
        }
        for waiter in waiters { waiter.resume(with: closed) }
    }

    private func checkpointUntilStopped() {
        // A checkpoint finds the database busy now and then (another connection holds a lock
        // it needs for a moment); only one that stays busy for a while is worth a warning.
        var busyInARow = 0
        while !isStopping.load(ordering: .relaxed) {
            _ = wake.wait(timeout: .now() + Self.interval)
            guard !isStopping.load(ordering: .relaxed) else { return }
            do {
                let walPages = try connection.writeWithoutTransaction { db in try db.checkpoint(.passive).walFrameCount }
                if walPages >= restartPages {
                    try writer.writeWithoutTransaction { db in _ = try db.checkpoint(.passive) }
                }
                busyInARow = 0
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY {
                busyInARow += 1
                if busyInARow.isMultiple(of: Self.busyTriesBeforeWarning) {
                    logger.warning("WAL checkpoint found the database busy \(busyInARow) times in a row; the WAL grows until one succeeds",
                                   metadata: ["error": "\(error)"])
                }
            } catch {
                logger.warning("WAL checkpoint failed; the next one tries again", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Stops the thread after the checkpoint in progress and returns once it has closed its
    /// connection, without blocking the calling thread meanwhile; call it before the writer
    /// closes (its close checkpoints what is left).
    func stop() async throws {
        requestStop()
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let ended: Result<Void, any Error>? = ending.withLock { state in
                switch state {
                case .running(var waiters):
                    waiters.append(continuation)
                    state = .running(waiters: waiters)
                    return nil
                case let .ended(closed):
                    return closed
                }
            }
            if let ended { continuation.resume(with: ended) }
        }
    }

    /// Asks the thread to stop after the checkpoint in progress and to close its connection,
    /// without waiting for it.
    func requestStop() {
        guard !isStopping.exchange(true, ordering: .relaxed) else { return }
        wake.signal()
    }
}
