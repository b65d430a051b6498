import Foundation
import Testing

extension Tag {
    /// Tests that start `georep` processes (nodes, brokers, the fault harness): the slow part
    /// of the suite.
    @Tag static var process: Self
}

extension Trait where Self == ConditionTrait {
    /// Runs a suite that starts `georep` processes, unless `GEOREP_FAST_TESTS` is set
    /// (`scripts/test --fast`): together with the tag `process`, what marks such a suite.
    static var startsProcesses: Self {
        .enabled(if: ProcessInfo.processInfo.environment["GEOREP_FAST_TESTS"] == nil, "GEOREP_FAST_TESTS skips the tests that start georep processes")
    }
}
