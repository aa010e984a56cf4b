/* SPDX-License-Identifier: MIT */
#include "state.h"

#include "util.h"

/* Timestamps go through JSON numbers (doubles): past 2^53 they would not read
 * back exactly, so save refuses them and load calls them corruption. */
#define STATE_TIME_MAX INT64_C(9007199254740992)

static const char *const act_result_names[_ACT_RESULT_MAX] = {
        [ACT_INTENT] = "intent",
        [ACT_DONE] = "done",
        [ACT_ENDED_BY_ITSELF] = "ended_by_itself",
        [ACT_FAILED] = "failed",
        [ACT_UNCONFIRMED] = "unconfirmed",
};

const char *act_result_name(act_result r) {
        if ((unsigned) r >= _ACT_RESULT_MAX)
                return NULL;
        return act_result_names[r];
}

int act_result_from_string(const char *s) {
        if (!s)
                return -EINVAL;
        for (int i = 0; i < _ACT_RESULT_MAX; i++)
                if (streq(s, act_result_names[i]))
                        return i;
        return -EINVAL;
}

static void act_record_done(act_record *a) {
        free(a->change_order_id);
        free(a->rule);
        free(a->detail);
        free(a->rollback_order_id);
        *a = (act_record) {};
}

static void pending_match_done(pending_match *p) {
        free(p->change_order_id);
        free(p->rule);
        *p = (pending_match) {};
}

void app_state_done(app_state *s) {
        if (!s)
                return;
        for (size_t i = 0; i < s->n_acts; i++)
                act_record_done(&s->acts[i]);
        free(s->acts);
        for (size_t i = 0; i < s->n_pending; i++)
                pending_match_done(&s->pending[i]);
        free(s->pending);
        free(s->app);
        free(s->name);
        free(s->last_change_order_id);
        *s = (app_state) {};
}

/* ---- validity ------------------------------------------------------------ */

bool state_time_valid(int64_t t) {
        return t >= 0 && t <= STATE_TIME_MAX;
}

bool act_record_valid(const act_record *a) {
        return a->change_order_id && a->rule && (unsigned) a->action <= ACTION_LOG &&
               rule_action_name(a->action) && (unsigned) a->result < _ACT_RESULT_MAX &&
               state_time_valid(a->intent_ms) && state_time_valid(a->finished_ms);
}

/* Whatever state_save writes must read back identically; refusing here is
 * what keeps a bad in-memory record from being mistaken for corruption (and
 * moved aside, losing every intent in it) on the next start. */
bool app_state_valid(const app_state *s) {
        if (!s->app || !*s->app || !state_time_valid(s->cooldown_until_ms))
                return false;
        if (s->n_acts > STATE_MAX_ACTS || s->n_pending > STATE_MAX_PENDING)
                return false;
        for (size_t i = 0; i < s->n_acts; i++)
                if (!act_record_valid(&s->acts[i]))
                        return false;
        for (size_t i = 0; i < s->n_pending; i++)
                if (!s->pending[i].change_order_id || !s->pending[i].rule ||
                    !state_time_valid(s->pending[i].since_ms))
                        return false;
        return true;
}

/* ---- clocks ------------------------------------------------------------------ */

int64_t state_time_to_steady(int64_t wall_ms, int64_t offset_ms) {
        if (wall_ms == 0)
                return 0;
        int64_t t = wall_ms - offset_ms;
        return t >= 1 ? t : 1;
}

int64_t state_time_to_wall(int64_t steady_ms, int64_t offset_ms) {
        if (steady_ms == 0)
                return 0;
        int64_t t = steady_ms + offset_ms;
        if (t < 1)
                return 1;
        return t > STATE_TIME_MAX ? STATE_TIME_MAX : t;
}

void state_convert_times(app_state *s, int64_t offset_ms, bool to_wall) {
        int64_t (*f)(int64_t, int64_t) = to_wall ? state_time_to_wall : state_time_to_steady;
        s->cooldown_until_ms = f(s->cooldown_until_ms, offset_ms);
        for (size_t i = 0; i < s->n_acts; i++) {
                s->acts[i].intent_ms = f(s->acts[i].intent_ms, offset_ms);
                s->acts[i].finished_ms = f(s->acts[i].finished_ms, offset_ms);
        }
        for (size_t i = 0; i < s->n_pending; i++)
                s->pending[i].since_ms = f(s->pending[i].since_ms, offset_ms);
}

/* ---- the in-memory record ---------------------------------------------------- */

act_record *state_find_act(const app_state *s, const char *change_order_id) {
        if (!s || !change_order_id)
                return NULL;
        for (size_t i = s->n_acts; i > 0; i--)
                if (streq_null(s->acts[i - 1].change_order_id, change_order_id))
                        return &s->acts[i - 1];
        return NULL;
}

int state_add_act(app_state *s, const act_record *a) {
        if (!s || !a || !act_record_valid(a))
                return -EINVAL;

        act_record c = {
                .change_order_id = strdup(a->change_order_id),
                .rule = strdup(a->rule),
                .action = a->action,
                .intent_ms = a->intent_ms,
                .result = a->result,
                .detail = strdup_null(a->detail),
                .rollback_order_id = strdup_null(a->rollback_order_id),
                .finished_ms = a->finished_ms,
        };
        if (!c.change_order_id || !c.rule || (a->detail && !c.detail) ||
            (a->rollback_order_id && !c.rollback_order_id)) {
                act_record_done(&c);
                return -ENOMEM;
        }

        if (s->n_acts >= STATE_MAX_ACTS) {
                size_t drop = s->n_acts - STATE_MAX_ACTS + 1;
                for (size_t i = 0; i < drop; i++)
                        act_record_done(&s->acts[i]);
                memmove(s->acts, s->acts + drop, (s->n_acts - drop) * sizeof(act_record));
                s->n_acts -= drop;
        } else {
                act_record *n = realloc(s->acts, (s->n_acts + 1) * sizeof(act_record));
                if (!n) {
                        act_record_done(&c);
                        return -ENOMEM;
                }
                s->acts = n;
        }
        s->acts[s->n_acts++] = c;
        return 0;
}

size_t state_count_acts_since(const app_state *s, int64_t since_ms) {
        size_t n = 0;
        if (!s)
                return 0;
        /* every attempt counts, whatever came of it: the circuit breaker is
         * about how often we pulled the trigger */
        for (size_t i = 0; i < s->n_acts; i++)
                if (s->acts[i].intent_ms >= since_ms)
                        n++;
        return n;
}

static ssize_t pending_index(const app_state *s, const char *change_order_id, const char *rule_name) {
        for (size_t i = 0; i < s->n_pending; i++)
                if (streq_null(s->pending[i].change_order_id, change_order_id) &&
                    streq_null(s->pending[i].rule, rule_name))
                        return (ssize_t) i;
        return -1;
}

static void pending_remove(app_state *s, size_t i) {
        pending_match_done(&s->pending[i]);
        memmove(s->pending + i, s->pending + i + 1, (s->n_pending - i - 1) * sizeof(pending_match));
        s->n_pending--;
}

int64_t state_pending_since(const app_state *s, const char *change_order_id, const char *rule_name) {
        if (!s || !change_order_id || !rule_name)
                return 0;
        ssize_t i = pending_index(s, change_order_id, rule_name);
        return i < 0 ? 0 : s->pending[i].since_ms;
}

int state_set_pending(app_state *s, const char *change_order_id, const char *rule_name,
                      int64_t since_ms) {
        if (!s || !change_order_id || !rule_name || !state_time_valid(since_ms))
                return -EINVAL;

        ssize_t i = pending_index(s, change_order_id, rule_name);
        if (since_ms == 0) {
                if (i < 0)
                        return 0;
                pending_remove(s, (size_t) i);
                return 1;
        }
        if (i >= 0) {
                if (s->pending[i].since_ms == since_ms)
                        return 0;
                s->pending[i].since_ms = since_ms;
                return 1;
        }

        pending_match p = {
                .change_order_id = strdup(change_order_id),
                .rule = strdup(rule_name),
                .since_ms = since_ms,
        };
        if (!p.change_order_id || !p.rule) {
                pending_match_done(&p);
                return -ENOMEM;
        }
        while (s->n_pending >= STATE_MAX_PENDING)
                pending_remove(s, 0);
        pending_match *n = realloc(s->pending, (s->n_pending + 1) * sizeof(pending_match));
        if (!n) {
                pending_match_done(&p);
                return -ENOMEM;
        }
        s->pending = n;
        s->pending[s->n_pending++] = p;
        return 1;
}

int state_prune_pending(app_state *s, const char *keep_change_order_id) {
        if (!s)
                return 0;
        int changed = 0;
        for (size_t i = s->n_pending; i > 0; i--)
                if (!streq_null(s->pending[i - 1].change_order_id, keep_change_order_id)) {
                        pending_remove(s, i - 1);
                        changed = 1;
                }
        return changed;
}

int state_drop_newest_act(app_state *s, const char *change_order_id) {
        if (!s || s->n_acts == 0 || !streq_null(s->acts[s->n_acts - 1].change_order_id, change_order_id))
                return 0;
        act_record_done(&s->acts[--s->n_acts]);
        return 1;
}
