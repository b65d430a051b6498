/// The operator's pause of an ``Applier`` (an admin hook that simulates a stalled region):
/// while it is on, nothing is applied. A paused applier is woken by a change of the switch, not
/// by polling it.
///
/// - Important: thread-safe; the node flips it, the applier waits on it.
public final class PauseSwitch: Sendable {
    private let state = Condition(PauseState())

    /// A switch that is off.
    public init() {}

    /// Pauses for `duration` (nil: until ``resume()``).
    public func pause(for duration: Duration?) {
        state.update { $0.pause(until: duration.map { .now + $0 }) }
        // A timed pause ends by itself: its waiters are woken then to see it.
        if let duration {
            Task { [weak self] in
                try? await Task.sleep(for: duration)
                self?.wakeAll()
            }
        }
    }

    /// Ends a pause.
    public func resume() {
        state.update { $0.resume() }
    }

    /// Whether applying is paused now.
    public var isPaused: Bool { state.value.isPaused(at: .now) }

    /// Wakes every waiter, paused or not: what a stopping applier does so that its loop sees the stop.
    func wakeAll() {
        state.update { $0.wakes += 1 }
    }

    /// A mark of the waiters' wakes so far, to take before checking what a wait is for (see
    /// ``waitForChange(since:)``).
    var wakeMark: Int { state.value.wakes }

    /// Returns once the switch is not paused, or the waiters were woken since `mark` (taken
    /// with ``wakeMark`` before the caller checked its own reason to stop), or the task is
    /// cancelled. A wake between the mark and the wait is not missed.
    func waitForChange(since mark: Int) async {
        try? await state.wait { !$0.isPaused(at: .now) || $0.wakes != mark }
    }
}

/// The state of a ``PauseSwitch`` as a plain value.
struct PauseState: Sendable {
    /// When a timed pause ends; nil for none.
    private(set) var pausedUntil: ContinuousClock.Instant?
    /// Whether a pause without an end is on.
    private(set) var isOpenEnded = false
    /// How many times the waiters were woken without a change of the pause.
    var wakes = 0

    /// Whether the switch is paused at `now`.
    func isPaused(at now: ContinuousClock.Instant) -> Bool {
        isOpenEnded || pausedUntil.map { $0 > now } ?? false
    }

    /// Pauses until `until` (nil: until resumed).
    mutating func pause(until: ContinuousClock.Instant?) {
        pausedUntil = until
        isOpenEnded = until == nil
    }

    /// Ends the pause.
    mutating func resume() {
        pausedUntil = nil
        isOpenEnded = false
    }
}
