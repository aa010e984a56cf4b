/* SPDX-License-Identifier: MIT */
/* What a chat platform's answer means (issue 14): a 200 can still say
 * "no". Pure: no I/O. */
#pragma once

#include <stddef.h>

#include "notify_channel.h"

/* How a platform's answer reads. */
typedef enum notify_answer {
        NOTIFY_ANSWER_OK,
        NOTIFY_ANSWER_RETRY, /* 5xx, 429, throttled, no answer: try again later */
        NOTIFY_ANSWER_FAIL,  /* refused for good (bad token, bad sign, bad body) */
} notify_answer;

/* status 0 = no HTTP answer (refused, timeout). body may be NULL. A 2xx
 * whose body says error (DingTalk/WeCom errcode != 0, Feishu code != 0,
 * Slack anything but "ok") is not OK. detail gets a short human text
 * (the platform's error code and message, never the URL). */
notify_answer notify_classify_answer(notify_type t, long status, const char *body, char *detail,
                                     size_t detail_sz);
