/* epode.h — the one header applications include. */
#ifndef EPODE_H
#define EPODE_H

#include "epode/common.h"
#include "epode/stanza.h"
#include "epode/jid.h"
#include "epode/parser.h"
#include "epode/ctx.h"
#include "epode/loop.h"
#include "epode/conn.h"
#include "epode/handler.h"

/* The IM layer (issue 4), header by header as it lands. */
#if defined(__has_include)
#if __has_include("epode/messaging.h")
#include "epode/messaging.h"
#endif
#if __has_include("epode/presence.h")
#include "epode/presence.h"
#endif
#if __has_include("epode/roster.h")
#include "epode/roster.h"
#endif
#if __has_include("epode/disco.h")
#include "epode/disco.h"
#endif
#if __has_include("epode/caps.h")
#include "epode/caps.h"
#endif
#if __has_include("epode/ping.h")
#include "epode/ping.h"
#endif
#if __has_include("epode/version.h")
#include "epode/version.h"
#endif
#if __has_include("epode/muc.h")
#include "epode/muc.h"
#endif
#if __has_include("epode/carbons.h")
#include "epode/carbons.h"
#endif
#endif

#endif
