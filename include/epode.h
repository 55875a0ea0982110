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

#endif
