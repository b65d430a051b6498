import Foundation
import Synchronization

/// A hybrid logical clock: timestamps close to wall-clock time that never go backward.
///
/// - Important: All methods are thread-safe; the state is guarded by a mutex.
public final class HybridLogicalClock: Sendable {
    /// A wall clock in milliseconds since the Unix epoch.
    public typealias WallClock = @Sendable () -> UInt64

    /// Why a remote timestamp was refused.
    public enum ReceiveError: Error, Equatable, CustomStringConvertible {
        /// The remote timestamp is further ahead of the local wall clock than allowed.
        case remoteTooFarAhead(remote: HLCTimestamp, aheadMillis: UInt64, maxOffsetMillis: UInt64)

        /// A human-readable reason.
        public var description: String {
            switch self {
            case let .remoteTooFarAhead(remote, ahead, maxOffset):
                "remote HLC \(remote) is \(ahead) ms ahead of the local wall clock (max offset \(maxOffset) ms)"
            }
        }
    }

    /// The system wall clock in milliseconds since the Unix epoch.
    public static let systemWallClock: WallClock = {
        UInt64(max(0, Date().timeIntervalSince1970 * 1000))
    }

    private let wallClock: WallClock
    /// How far ahead of the local wall clock a received timestamp may be.
    public let maxOffsetMillis: UInt64
    private let last: Mutex<HLCTimestamp>

    /// Makes a clock that starts no lower than `floor`, the persisted high-water mark.
    public init(maxOffsetMillis: UInt64 = 60_000, floor: HLCTimestamp = .zero, wallClock: @escaping WallClock = HybridLogicalClock.systemWallClock) {
        self.wallClock = wallClock
        self.maxOffsetMillis = maxOffsetMillis
        self.last = Mutex(floor)
    }

    /// The wall clock now, in milliseconds since the Unix epoch.
    public func wallMillis() -> UInt64 {
        wallClock()
    }

    /// The latest timestamp issued or received.
    public var current: HLCTimestamp {
        last.withLock { $0 }
    }

    /// Issues a timestamp for a local event, strictly greater than every earlier one.
    public func now() -> HLCTimestamp {
        let wall = min(wallClock(), HLCTimestamp.maxMillis)
        return last.withLock { last in
            let next = wall > last.millis ? HLCTimestamp(millis: wall, logical: 0) : Self.successor(of: last)
            last = next
            return next
        }
    }

    /// Merges a remote timestamp into the clock and returns the new local timestamp.
    ///
    /// - Throws: `ReceiveError.remoteTooFarAhead` without advancing the clock when the
    ///   remote physical time exceeds the local wall clock by more than `maxOffsetMillis`.
    public func receive(_ remote: HLCTimestamp) throws(ReceiveError) -> HLCTimestamp {
        let wall = min(wallClock(), HLCTimestamp.maxMillis)
        if remote.millis > wall, remote.millis - wall > maxOffsetMillis {
            throw .remoteTooFarAhead(remote: remote, aheadMillis: remote.millis - wall, maxOffsetMillis: maxOffsetMillis)
        }
        return last.withLock { last in
            let physical = max(wall, last.millis, remote.millis)
            let next: HLCTimestamp
            if physical == last.millis && physical == remote.millis {
                next = Self.successor(of: max(last, remote))
            } else if physical == last.millis {
                next = Self.successor(of: last)
            } else if physical == remote.millis {
                next = Self.successor(of: remote)
            } else {
                next = HLCTimestamp(millis: physical, logical: 0)
            }
            last = next
            return next
        }
    }

    /// Raises the clock to at least `timestamp` without checks, e.g. from a persisted high-water mark.
    public func advance(to timestamp: HLCTimestamp) {
        last.withLock { last in last = max(last, timestamp) }
    }

    /// The next timestamp: the logical counter plus one, or the next millisecond when it overflows.
    private static func successor(of timestamp: HLCTimestamp) -> HLCTimestamp {
        if timestamp.logical == HLCTimestamp.maxLogical {
            return HLCTimestamp(millis: timestamp.millis + 1, logical: 0)
        }
        return HLCTimestamp(rawValue: timestamp.rawValue + 1)
    }
}
