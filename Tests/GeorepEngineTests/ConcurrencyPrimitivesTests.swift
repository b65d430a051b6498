@testable import GeorepEngine
import GeorepLog
import GeorepModel
import Synchronization
import Testing

/// The engine's async primitives, each through its state value and then as tasks that wait.
@Suite("async primitives")
struct ConcurrencyPrimitivesTests {
    // MARK: - Condition

    @Test("a condition wakes exactly the waiters its update satisfies, and a cancelled wait throws")
    func condition() async throws {
        let condition = Condition(0)
        let woken = Condition([Int]())
        try await withThrowingTaskGroup(of: Void.self) { group in
            for threshold in [1, 2, 3] {
                group.addTask {
                    try await condition.wait { $0 >= threshold }
                    woken.update { $0.append(threshold) }
                }
            }
            while condition.waiterCount < 3 { await Task.yield() }
            condition.update { $0 = 2 }
            try await woken.wait { $0.count == 2 }
            #expect(woken.value.sorted() == [1, 2])
            #expect(condition.waiterCount == 1)
            condition.update { $0 = 3 }
            try await group.waitForAll()
        }
        #expect(woken.value.sorted() == [1, 2, 3])

        // Met already: no wait.
        try await condition.wait { $0 == 3 }
        // A timeout answers false and leaves no waiter behind.
        #expect(await condition.wait(until: { $0 == 4 }, timeout: .milliseconds(20)) == false)
        #expect(condition.waiterCount == 0)
        // Cancelled: CancellationError, no waiter left.
        let waiting = Task { try await condition.wait { $0 == 99 } }
        while condition.waiterCount == 0 { await Task.yield() }
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        #expect(condition.waiterCount == 0)
    }

    // MARK: - KeyedSerializer

    @Test("keyed turns: the first caller of a key goes at once, later ones queue in order, other keys are free")
    func keyedTurns() {
        var turns = KeyedTurns<Int>()
        let acquired = [turns.acquire("a", waiter: 1), turns.acquire("a", waiter: 2), turns.acquire("a", waiter: 3), turns.acquire("b", waiter: 4)]
        #expect(acquired == [true, false, false, true])
        let handedTo = [turns.release("a"), turns.release("a"), turns.release("a")]
        #expect(handedTo == [2, 3, nil])
        #expect(turns.queues["a"] == nil, "a key nobody holds is forgotten")
        let last = turns.release("b")
        #expect(last == nil)
        #expect(turns.queues.isEmpty)
    }

    @Test("a keyed serializer runs one section per key at a time, sections of other keys at once")
    func keyedSerializer() async {
        let serializer = KeyedSerializer()
        let inside = Condition([String: Int]())
        let most = Condition([String: Int]())
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<40 {
                let key = index % 2 == 0 ? "even" : "odd"
                group.addTask {
                    await serializer.withKey(key) {
                        let now = inside.update { $0[key, default: 0] += 1; return $0[key]! }
                        most.update { $0[key] = max($0[key] ?? 0, now) }
                        await Task.yield()
                        inside.update { $0[key]! -= 1 }
                    }
                }
            }
        }
        #expect(most.value == ["even": 1, "odd": 1])
    }

    // MARK: - LocalApplyQueue

    @Test("group commit: the first caller leads, later ones queue, and each finished transaction hands the queue on in groups")
    func groupCommit() {
        var state = GroupCommitState<Int>(maxGroupSize: 2)
        let leads = [state.arrive(1), state.arrive(2), state.arrive(3), state.arrive(4)]
        #expect(leads == [true, false, false, false])
        let first = state.finishTransaction()
        #expect(first == [2, 3])
        #expect(state.isApplying)
        let fifthLeads = state.arrive(5)
        #expect(!fifthLeads)
        let second = state.finishTransaction()
        #expect(second == [4, 5])
        let third = state.finishTransaction()
        #expect(third == nil)
        #expect(!state.isApplying)
        let sixthLeads = state.arrive(6)
        #expect(sixthLeads, "an idle queue lets the next caller lead")
    }

    // MARK: - PauseSwitch

    @Test("a pause: open or timed, resumed, and its waiters woken by each change, never by polling")
    func pause() async {
        var state = PauseState()
        let now = ContinuousClock.now
        #expect(!state.isPaused(at: now))
        state.pause(until: now + .seconds(1))
        #expect(state.isPaused(at: now))
        #expect(!state.isPaused(at: now + .seconds(2)), "a timed pause ends by itself")
        state.pause(until: nil)
        #expect(state.isPaused(at: now + .seconds(3600)))
        state.resume()
        #expect(!state.isPaused(at: now))

        let pause = PauseSwitch()
        await pause.waitForChange(since: pause.wakeMark)  // not paused: returns at once
        pause.pause(for: nil)
        let resumed = Atomic(false)
        let waiter = Task {
            while pause.isPaused { await pause.waitForChange(since: pause.wakeMark) }
            resumed.store(true, ordering: .relaxed)
        }
        try? await Task.sleep(for: .milliseconds(50))
        let resumedEarly = resumed.load(ordering: .relaxed)
        #expect(!resumedEarly)
        pause.resume()
        await waiter.value
        let resumedAfter = resumed.load(ordering: .relaxed)
        #expect(resumedAfter)

        // A timed pause wakes its waiters when it ends.
        pause.pause(for: .milliseconds(30))
        let start = ContinuousClock.now
        while pause.isPaused { await pause.waitForChange(since: pause.wakeMark) }
        #expect(ContinuousClock.now - start >= .milliseconds(25))

        // wakeAll lets a stopping applier see its stop while still paused.
        pause.pause(for: nil)
        let mark = pause.wakeMark
        let woken = Task { await pause.waitForChange(since: mark) }
        try? await Task.sleep(for: .milliseconds(20))
        pause.wakeAll()
        await woken.value
        #expect(pause.isPaused)

        // A wake between taking the mark and waiting (a stop racing the applier's check) is
        // not missed: the wait returns at once.
        let before = pause.wakeMark
        pause.wakeAll()
        await pause.waitForChange(since: before)
        #expect(pause.isPaused)
    }

    // MARK: - UnstoredWrites

    @Test("unstored writes: what a row's next event waits for after a restart and after a failed local apply")
    func unstoredState() {
        let topic = "georep.us-east-1.changes"
        let p0 = TopicPartition(topic: topic, partition: 0)
        let p1 = TopicPartition(topic: topic, partition: 1)
        var state = UnstoredState(catchesUpAtStart: true)
        #expect(state.need(key: "cart/1") == .startEnds)
        #expect(state.mayMiss(SourcePosition(topic: topic, partition: 0, offset: 0)))

        state.setStartEnds([p0: 5, p1: 0])
        let end0 = SourcePosition(topic: topic, partition: 0, offset: 4)
        #expect(state.need(key: "cart/1") == .positions([end0]), "an empty partition is not waited for")
        #expect(state.mayMiss(SourcePosition(topic: topic, partition: 0, offset: 4)))
        #expect(!state.mayMiss(SourcePosition(topic: topic, partition: 0, offset: 5)))

        state.stored([end0])
        #expect(state.catchUp == .done)
        #expect(state.need(key: "cart/1") == .nothing)

        let failed = SourcePosition(topic: topic, partition: 1, offset: 9)
        state.localApplyFailed(key: "cart/1", at: failed)
        #expect(state.need(key: "cart/1") == .positions([failed]))
        #expect(state.need(key: "cart/2") == .nothing, "other rows do not wait")
        #expect(state.mayMiss(failed))
        state.stored([failed])
        #expect(state.need(key: "cart/1") == .nothing)
        #expect(!state.mayMiss(failed))

        var fresh = UnstoredState(catchesUpAtStart: true)
        fresh.setStartEnds([p0: 0])
        #expect(fresh.catchUp == .done, "an empty log is caught up at once")
        #expect(UnstoredState(catchesUpAtStart: false).need(key: "x") == .nothing)
    }

    /// A store's progress that a test moves by hand.
    final class ManualProgress: StoreProgress {
        let stored = Condition([TopicPartition: Int64]())

        func waitUntilStored(_ position: SourcePosition, timeout: Duration) async -> Bool {
            await stored.wait(until: { ($0[position.partition] ?? 0) > position.offset }, timeout: timeout)
        }
    }

    @Test("a write waits for the ends at start and then for the store's progress, woken by each; in time it is refused")
    func unstoredWrites() async throws {
        let topic = "georep.us-east-1.changes"
        let partition = TopicPartition(topic: topic, partition: 0)
        let progress = ManualProgress()
        let unstored = UnstoredWrites(progress: progress, catchesUpAtStart: true)
        let done = Atomic(false)
        let write = Task {
            try await unstored.waitUntilStored(key: "cart/1", region: "us-east-1", timeout: .seconds(30))
            done.store(true, ordering: .relaxed)
        }
        try await Task.sleep(for: .milliseconds(30))
        unstored.setStartEnds([partition: 3])
        try await Task.sleep(for: .milliseconds(30))
        let doneEarly = done.load(ordering: .relaxed)
        #expect(!doneEarly, "the store does not hold the log's end yet")
        progress.stored.update { $0[partition] = 3 }
        try await write.value
        let doneAfter = done.load(ordering: .relaxed)
        #expect(doneAfter)

        unstored.localApplyFailed(key: "cart/1", at: SourcePosition(topic: topic, partition: 0, offset: 7))
        await #expect(throws: WriteError.self) {
            try await unstored.waitUntilStored(key: "cart/1", region: "us-east-1", timeout: .milliseconds(50))
        }
    }
}
