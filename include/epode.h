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
#include "epode/transport.h"

/* The IM layer: helpers built on the API above. */
#include "epode/messaging.h"
#include "epode/presence.h"
#include "epode/roster.h"
#include "epode/disco.h"
#include "epode/caps.h"
#include "epode/ping.h"
#include "epode/version.h"
#include "epode/muc.h"
#include "epode/carbons.h"
#include "epode/msgext.h"
#include "epode/blocking.h"
#include "epode/csi.h"
#include "epode/mam.h"
#include "epode/pubsub.h"
#include "epode/bookmarks.h"
#include "epode/avatar.h"
#include "epode/nickname.h"
#include "epode/forms.h"
#include "epode/register.h"
#include "epode/upload.h"
#include "epode/commands.h"

#endif
