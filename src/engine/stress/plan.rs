//! Choosing the next state: the sequential walk through the table (default) or random
//! picks, each accepted with its probability, plus the "again" repeat.

use rand::RngExt;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::states::{Level, Probabilities, State};

/// Tries before giving up when no state can run at the current level.
const MAX_TRIES: usize = 10_000;

/// Per-connection planner state.
#[derive(Debug, Clone)]
pub struct Planner {
    current: State,
    random: bool,
    uidfetch_done: bool,
    compress_done: bool,
}

impl Planner {
    /// A planner for a freshly logged-in connection: the walk starts after LOGIN.
    pub fn after_login(random: bool) -> Self {
        Planner {
            current: State::Login,
            random,
            uidfetch_done: false,
            compress_done: false,
        }
    }

    /// The next state to run at `level` (the level once outstanding commands finish).
    /// `append_again_inline`: APPEND repeats happen inside one MULTIAPPEND command, so
    /// the planner must not repeat APPEND itself. `None` if nothing can run.
    pub fn next(
        &mut self,
        rng: &mut Xoshiro256PlusPlus,
        probabilities: &Probabilities,
        level: Level,
        append_again_inline: bool,
    ) -> Option<State> {
        let again_allowed = !(self.current == State::Append && append_again_inline);
        if self.current > State::Login
            && again_allowed
            && chance(rng, probabilities.again(self.current))
            && self.runnable(self.current, level)
        {
            return Some(self.accept(self.current));
        }
        for _ in 0..MAX_TRIES {
            let candidate = if self.random {
                let first = State::List as usize;
                let last = State::Logout as usize;
                nth_state(rng.random_range(first..=last))
            } else {
                next_in_walk(self.current)
            };
            if !self.random {
                // The walk moves on whether or not the state runs.
                self.current = candidate;
            }
            if !chance(rng, probabilities.get(candidate)) || !self.runnable(candidate, level) {
                continue;
            }
            return Some(self.accept(candidate));
        }
        None
    }

    fn runnable(&self, state: State, level: Level) -> bool {
        match state {
            State::Login | State::Authenticate | State::Banner => false,
            // Once per connection, like UIDFETCH.
            State::Compress if self.compress_done => false,
            State::UidFetch if self.uidfetch_done => false,
            s => s.info().level <= level,
        }
    }

    fn accept(&mut self, state: State) -> State {
        self.current = state;
        match state {
            State::UidFetch => self.uidfetch_done = true,
            State::Compress => self.compress_done = true,
            _ => {}
        }
        state
    }
}

fn chance(rng: &mut Xoshiro256PlusPlus, percent: u8) -> bool {
    rng.random_range(0..100u32) < u32::from(percent)
}

fn nth_state(i: usize) -> State {
    State::all().nth(i).unwrap_or(State::Logout)
}

/// The state after `state` in the walk, wrapping from LOGOUT to COMPRESS.
pub fn next_in_walk(state: State) -> State {
    if state >= State::Logout {
        return State::Compress;
    }
    nth_state(state as usize + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn walk_wraps_after_logout() {
        assert_eq!(next_in_walk(State::Login), State::Compress);
        assert_eq!(next_in_walk(State::Select), State::UidFetch);
        assert_eq!(next_in_walk(State::Logout), State::Compress);
    }

    #[test]
    fn default_walk_reaches_logout_after_select() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let p = Probabilities::default();
        let mut planner = Planner::after_login(false);
        let mut seen = Vec::new();
        let mut level = Level::Auth;
        while let Some(s) = planner.next(&mut rng, &p, level, false) {
            seen.push(s);
            if s == State::Select {
                level = Level::Selected;
            }
            if s == State::Logout {
                break;
            }
        }
        assert!(seen.contains(&State::Select));
        assert!(seen.contains(&State::Fetch));
        assert!(seen.contains(&State::Expunge));
        assert_eq!(seen.last(), Some(&State::Logout));
        let select = seen.iter().position(|&s| s == State::Select).unwrap();
        let fetch = seen.iter().position(|&s| s == State::Fetch).unwrap();
        assert!(select < fetch, "{seen:?}");
    }

    #[test]
    fn selected_states_are_dropped_before_select() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        let mut p = Probabilities::default();
        p.clear_between_login_and_logout();
        p.set(State::Select, 0, None);
        p.set(State::Fetch, 100, None);
        let mut planner = Planner::after_login(false);
        // Only LOGOUT can run at the authenticated level.
        assert_eq!(
            planner.next(&mut rng, &p, Level::Auth, false),
            Some(State::Logout)
        );
    }

    #[test]
    fn nothing_runnable_gives_none() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut p = Probabilities {
            probability: [0; State::COUNT],
            ..Default::default()
        };
        p.set(State::Fetch, 100, None);
        let mut planner = Planner::after_login(true);
        assert_eq!(planner.next(&mut rng, &p, Level::Auth, false), None);
    }

    #[test]
    fn uidfetch_runs_once() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
        let mut p = Probabilities {
            probability: [0; State::COUNT],
            ..Default::default()
        };
        p.set(State::UidFetch, 100, None);
        p.set(State::Noop, 100, None);
        let mut planner = Planner::after_login(false);
        let picks: Vec<_> = (0..6)
            .filter_map(|_| planner.next(&mut rng, &p, Level::Selected, false))
            .collect();
        assert_eq!(picks.iter().filter(|&&s| s == State::UidFetch).count(), 1);
    }
}
