// SPDX-License-Identifier: GPL-2.0

//! Entry gate and kick rules, single-threaded and under real threads.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use common::{host_gate, FakeVcpus, HostAtomic, HostAtomic32};
use tdx_sept_guard_policy::gate::{
    EXITING_GUEST_MODE, IN_GUEST_MODE, OUTSIDE_GUEST_MODE, READING_SHADOW_PAGE_TABLES,
};
use tdx_sept_guard_policy::{
    exiting_guest_mode, vcpu_exit, vcpu_try_enter, Atomic32, GateRaised, KickGuard, KickTimeout,
    VcpuSet,
};

#[test]
fn mode_values_match_kvm() {
    let modes: [u32; 4] = [
        OUTSIDE_GUEST_MODE,
        IN_GUEST_MODE,
        EXITING_GUEST_MODE,
        READING_SHADOW_PAGE_TABLES,
    ];
    assert_eq!(modes, [0, 1, 2, 3]);
}

/// `kvm_vcpu_exiting_guest_mode()`: IN becomes EXITING, nothing else changes,
/// and the old mode comes back either way.
#[test]
fn exiting_guest_mode_is_kvms_cmpxchg() {
    for (before, after) in [
        (OUTSIDE_GUEST_MODE, OUTSIDE_GUEST_MODE),
        (IN_GUEST_MODE, EXITING_GUEST_MODE),
        (EXITING_GUEST_MODE, EXITING_GUEST_MODE),
        (READING_SHADOW_PAGE_TABLES, READING_SHADOW_PAGE_TABLES),
    ] {
        let mode = HostAtomic32::new(before);
        assert_eq!(exiting_guest_mode(&mode), before);
        assert_eq!(mode.load_acquire(), after, "from {before}");
    }
}

#[test]
fn vcpu_enters_while_gate_is_down() {
    let gate = host_gate();
    let mode = HostAtomic32::new(OUTSIDE_GUEST_MODE);
    assert_eq!(vcpu_try_enter(&gate, &mode), Ok(()));
    assert_eq!(mode.load_acquire(), IN_GUEST_MODE);
    vcpu_exit(&mode);
    assert_eq!(mode.load_acquire(), OUTSIDE_GUEST_MODE);
}

#[test]
fn vcpu_refuses_while_gate_is_up_and_stays_outside() {
    let gate = host_gate();
    let mode = HostAtomic32::new(OUTSIDE_GUEST_MODE);
    let guard = KickGuard::raise(&gate);
    assert_eq!(vcpu_try_enter(&gate, &mode), Err(GateRaised));
    assert_eq!(mode.load_acquire(), OUTSIDE_GUEST_MODE);
    drop(guard);
    assert_eq!(vcpu_try_enter(&gate, &mode), Ok(()));
}

#[test]
fn gate_is_counted() {
    let gate = host_gate();
    let mode = HostAtomic32::new(OUTSIDE_GUEST_MODE);
    let a = KickGuard::raise(&gate);
    let b = KickGuard::raise(&gate);
    assert_eq!(gate.raised_count(), 2);
    drop(a);
    assert!(gate.is_raised());
    assert_eq!(vcpu_try_enter(&gate, &mode), Err(GateRaised));
    drop(b);
    assert!(!gate.is_raised());
    assert_eq!(vcpu_try_enter(&gate, &mode), Ok(()));
}

#[test]
fn kick_ipis_only_vcpus_not_outside() {
    let gate = host_gate();
    let vcpus = FakeVcpus::new(&[
        OUTSIDE_GUEST_MODE,
        IN_GUEST_MODE,
        EXITING_GUEST_MODE,
        OUTSIDE_GUEST_MODE,
        READING_SHADOW_PAGE_TABLES,
    ]);
    let guard = KickGuard::raise(&gate);
    assert_eq!(guard.kick(&vcpus), Ok(3));
    assert_eq!(*vcpus.kicked.borrow(), vec![1, 2, 4]);
    for i in 0..5 {
        assert_eq!(vcpus.modes[i].load_acquire(), OUTSIDE_GUEST_MODE);
    }
    // All acked and out: a second kick finds nobody.
    assert_eq!(guard.kick(&vcpus), Ok(0));
    assert_eq!(vcpus.kicked.borrow().len(), 3);
}

/// The kicker marks a vCPU it finds in the guest `EXITING_GUEST_MODE` (seen
/// before the ack, which in `FakeVcpus` also makes it leave), and leaves the
/// other modes alone.
#[test]
fn kick_marks_vcpus_in_guest_exiting() {
    let gate = host_gate();
    let vcpus = FakeVcpus::new(&[
        IN_GUEST_MODE,
        OUTSIDE_GUEST_MODE,
        READING_SHADOW_PAGE_TABLES,
    ]);
    vcpus.ack.set(false);
    let guard = KickGuard::raise(&gate);
    assert_eq!(guard.kick(&vcpus), Err(KickTimeout));
    // The two vCPUs not outside guest mode were kicked, and stay unacked.
    assert_eq!(guard.kick_counted(&vcpus), (2, Err(KickTimeout)));
    let modes: Vec<u32> = vcpus.modes.iter().map(|m| m.load_acquire()).collect();
    assert_eq!(
        modes,
        [
            EXITING_GUEST_MODE,
            OUTSIDE_GUEST_MODE,
            READING_SHADOW_PAGE_TABLES
        ]
    );
}

#[test]
fn kick_timeout_is_reported_and_gate_still_lowers() {
    let gate = host_gate();
    let vcpus = FakeVcpus::new(&[IN_GUEST_MODE]);
    vcpus.ack.set(false);
    let result = {
        let guard = KickGuard::raise(&gate);
        guard.kick(&vcpus)
    };
    assert_eq!(result, Err(KickTimeout));
    assert!(!gate.is_raised());
}

#[test]
fn gate_lowers_on_unwind() {
    let gate = host_gate();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _g = KickGuard::raise(&gate);
        panic!("boom");
    }));
    assert!(r.is_err());
    assert!(!gate.is_raised());
}

/// Real threads: vCPUs enter and exit in a loop, acking kicks between entries;
/// kickers raise, kick, then check that no vCPU is in guest mode. Bounded by
/// iteration counts; the ack wait is bounded by a spin limit.
#[test]
fn threads_never_see_a_vcpu_in_guest_after_acks() {
    const VCPUS: usize = 3;
    const KICKERS: usize = 2;
    const ENTRIES: usize = 20_000;
    const KICKS: usize = 2_000;

    struct Shared {
        gate: tdx_sept_guard_policy::EntryGate<HostAtomic>,
        modes: Vec<HostAtomic32>,
        in_guest: Vec<AtomicBool>,
        pending: Vec<Vec<AtomicBool>>, // [kicker][vcpu]
        done: Vec<AtomicBool>,
    }
    struct View(Arc<Shared>, usize);
    impl VcpuSet for View {
        type Kick = Vec<usize>;
        fn nr_vcpus(&self) -> usize {
            VCPUS
        }
        fn exiting_guest_mode(&self, i: usize) -> u32 {
            exiting_guest_mode(&self.0.modes[i])
        }
        fn begin_kick(&self) -> Vec<usize> {
            Vec::new()
        }
        fn send_kick(&self, kick: &mut Vec<usize>, i: usize) {
            self.0.pending[self.1][i].store(true, SeqCst);
            kick.push(i);
        }
        fn wait_for_acks(&self, kick: Vec<usize>) -> Result<(), KickTimeout> {
            for i in kick {
                let mut spins = 0u64;
                while self.0.pending[self.1][i].load(SeqCst) && !self.0.done[i].load(SeqCst) {
                    spins += 1;
                    if spins > 1_000_000_000 {
                        return Err(KickTimeout);
                    }
                    std::hint::spin_loop();
                }
            }
            Ok(())
        }
    }

    let shared = Arc::new(Shared {
        gate: host_gate(),
        modes: (0..VCPUS)
            .map(|_| HostAtomic32::new(OUTSIDE_GUEST_MODE))
            .collect(),
        in_guest: (0..VCPUS).map(|_| AtomicBool::new(false)).collect(),
        pending: (0..KICKERS)
            .map(|_| (0..VCPUS).map(|_| AtomicBool::new(false)).collect())
            .collect(),
        done: (0..VCPUS).map(|_| AtomicBool::new(false)).collect(),
    });
    let entered = Arc::new(AtomicUsize::new(0));

    let mut threads = Vec::new();
    for v in 0..VCPUS {
        let s = shared.clone();
        let entered = entered.clone();
        threads.push(std::thread::spawn(move || {
            for _ in 0..ENTRIES {
                if vcpu_try_enter(&s.gate, &s.modes[v]).is_ok() {
                    s.in_guest[v].store(true, SeqCst);
                    entered.fetch_add(1, SeqCst);
                    s.in_guest[v].store(false, SeqCst);
                    vcpu_exit(&s.modes[v]);
                }
                for k in 0..KICKERS {
                    s.pending[k][v].store(false, SeqCst);
                }
            }
            s.done[v].store(true, SeqCst);
        }));
    }
    for k in 0..KICKERS {
        let s = shared.clone();
        threads.push(std::thread::spawn(move || {
            let view = View(s.clone(), k);
            for _ in 0..KICKS {
                let guard = KickGuard::raise(&s.gate);
                guard.kick(&view).expect("kick timed out");
                for v in 0..VCPUS {
                    assert!(
                        !s.in_guest[v].load(SeqCst),
                        "vCPU {v} in guest under the gate"
                    );
                }
                drop(guard);
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(shared.gate.raised_count(), 0);
    assert!(entered.load(SeqCst) > 0);
}
