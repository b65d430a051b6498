import GeorepModel
import Synchronization
import Testing

/// A wall clock that tests move by hand.
final class ManualWallClock: Sendable {
    private let millis: Mutex<UInt64>
    init(_ start: UInt64) { millis = Mutex(start) }
    func set(_ value: UInt64) { millis.withLock { $0 = value } }
    func advance(by delta: Int64) { millis.withLock { $0 = UInt64(Int64($0) + delta) } }
    var read: HybridLogicalClock.WallClock { { self.millis.withLock { $0 } } }
}

@Suite struct HLCTimestampTests {
    @Test func packsMillisAndLogical() {
        let timestamp = HLCTimestamp(millis: 1_750_000_000_123, logical: 7)
        #expect(timestamp.millis == 1_750_000_000_123)
        #expect(timestamp.logical == 7)
        #expect(timestamp.rawValue == 1_750_000_000_123 << 16 | 7)
        #expect(timestamp.description == String(timestamp.rawValue))
        #expect(HLCTimestamp(decimal: timestamp.description) == timestamp)
    }

    @Test func decimalParsingRejectsNonDigits() {
        #expect(HLCTimestamp(decimal: "-1") == nil)
        #expect(HLCTimestamp(decimal: "+1") == nil)
        #expect(HLCTimestamp(decimal: "") == nil)
        #expect(HLCTimestamp(decimal: "18446744073709551616") == nil)
        #expect(HLCTimestamp(decimal: "18446744073709551615")?.rawValue == .max)
    }

    @Test func ordersByMillisThenLogical() {
        #expect(HLCTimestamp(millis: 5, logical: 9) < HLCTimestamp(millis: 6, logical: 0))
        #expect(HLCTimestamp(millis: 5, logical: 1) < HLCTimestamp(millis: 5, logical: 2))
    }

    @Test func stampOrdersByHLCThenOrigin() {
        #expect(Fixtures.stamp(10, "us-east-1") < Fixtures.stamp(11, "ap-southeast-1"))
        #expect(Fixtures.stamp(10, "ap-southeast-1") < Fixtures.stamp(10, "eu-west-1"))
        let stamp = Fixtures.stamp(10, "eu-west-1", logical: 3)
        #expect(Stamp(tag: stamp.tag) == stamp)
        #expect(Stamp(tag: "12@") == nil)
        #expect(Stamp(tag: "x@eu") == nil)
    }
}

@Suite struct HybridLogicalClockTests {
    @Test func nowIsStrictlyIncreasingAcrossAWallClockStepBack() {
        let wall = ManualWallClock(1_750_000_000_000)
        let clock = HybridLogicalClock(wallClock: wall.read)
        var previous = clock.now()
        #expect(previous == HLCTimestamp(millis: 1_750_000_000_000, logical: 0))
        wall.advance(by: -10_000)
        for _ in 0..<1000 {
            let next = clock.now()
            #expect(next > previous)
            #expect(next.millis == 1_750_000_000_000)
            previous = next
        }
        wall.advance(by: 10_001)
        let caughtUp = clock.now()
        #expect(caughtUp == HLCTimestamp(millis: 1_750_000_000_001, logical: 0))
    }

    @Test func logicalOverflowBorrowsTheNextMillisecond() {
        let wall = ManualWallClock(1000)
        let clock = HybridLogicalClock(floor: HLCTimestamp(millis: 1000, logical: .max - 1), wallClock: wall.read)
        #expect(clock.now() == HLCTimestamp(millis: 1000, logical: .max))
        #expect(clock.now() == HLCTimestamp(millis: 1001, logical: 0))
        #expect(clock.now() == HLCTimestamp(millis: 1001, logical: 1))
    }

    @Test func restartFromPersistedFloorNeverGoesBackward() {
        let wall = ManualWallClock(1_750_000_000_000)
        let first = HybridLogicalClock(wallClock: wall.read)
        var last = first.now()
        for _ in 0..<10 { last = first.now() }
        // The machine restarts with its wall clock 5 s behind.
        wall.advance(by: -5_000)
        let restarted = HybridLogicalClock(floor: last, wallClock: wall.read)
        #expect(restarted.now() > last)
        let fresh = HybridLogicalClock(wallClock: wall.read)
        #expect(fresh.now() < last, "without the floor the clock would go backward")
    }

    @Test func receiveAdvancesPastRemote() throws {
        let wall = ManualWallClock(1_000_000)
        let clock = HybridLogicalClock(maxOffsetMillis: 60_000, wallClock: wall.read)
        let remote = HLCTimestamp(millis: 1_030_000, logical: 4)
        let received = try clock.receive(remote)
        #expect(received == HLCTimestamp(millis: 1_030_000, logical: 5))
        #expect(clock.now() > received)
        let older = try clock.receive(HLCTimestamp(millis: 900_000, logical: 0))
        #expect(older > received)
    }

    @Test func receiveRejectsARemoteOneHourAheadWithoutAdvancing() {
        let wall = ManualWallClock(1_750_000_000_000)
        let clock = HybridLogicalClock(maxOffsetMillis: 60_000, wallClock: wall.read)
        let before = clock.now()
        let remote = HLCTimestamp(millis: 1_750_000_000_000 + 3_600_000, logical: 0)
        #expect(throws: HybridLogicalClock.ReceiveError.remoteTooFarAhead(remote: remote, aheadMillis: 3_600_000, maxOffsetMillis: 60_000)) {
            try clock.receive(remote)
        }
        #expect(clock.current == before)
    }

    @Test func concurrentCallersGetDistinctTimestamps() async {
        let clock = HybridLogicalClock(wallClock: { 42 })
        let stamps = await withTaskGroup(of: [HLCTimestamp].self) { group in
            for _ in 0..<4 { group.addTask { (0..<500).map { _ in clock.now() } } }
            var all: [HLCTimestamp] = []
            for await part in group { all += part }
            return all
        }
        #expect(Set(stamps).count == 2000)
    }
}
