/*
 * config_life — the life of a loaded configuration after config_load():
 * what a reload may change (config_reload_blocker), the strings the next
 * configuration shares with the running one (config_adopt), and freeing.
 * See config.h.
 */
#include "core/config.h"

#include <stdlib.h>
#include <string.h>

static bool str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

const char *config_reload_blocker(const struct config *a, const struct config *b)
{
	if (a->workers != b->workers)
		return "workers";
	if (a->shards != b->shards)
		return "shards";
	/* backend.shards may change between two lists of external session
	 * servers (core/members.c moves the sessions); not to or from one
	 * embedded server or DNS discovery. */
	if ((a->nbackend_shards == 0) != (b->nbackend_shards == 0))
		return "backend.shards";
	if (str_differs(a->backend_discover_srv, b->backend_discover_srv) ||
	    a->backend_discover_interval != b->backend_discover_interval)
		return "backend.discover";
	if (a->nlisteners != b->nlisteners)
		return "listeners";
	for (size_t i = 0; i < a->nlisteners; i++) {
		const struct config_listener *x = &a->listeners[i], *y = &b->listeners[i];
		if (x->kind != y->kind || x->port != y->port || strcmp(x->host, y->host) ||
		    x->proxy_protocol != y->proxy_protocol || str_differs(x->path, y->path) ||
		    x->backlog != y->backlog)
			return "listeners";
	}
	if (a->ndomains != b->ndomains)
		return "domains";
	for (size_t i = 0; i < a->ndomains; i++)
		if (strcmp(a->domains[i].name, b->domains[i].name))
			return "domains[].name";
	if ((!a->nbackend_shards && str_differs(a->backend_address, b->backend_address)) ||
	    str_differs(a->backend_secret, b->backend_secret) ||
	    str_differs(a->backend_upstream, b->backend_upstream) || a->upstream_proxy != b->upstream_proxy ||
	    a->upstream_tls != b->upstream_tls)
		return "backend";
	if (str_differs(a->tls_ca_file, b->tls_ca_file))
		return "tls.ca_file";
	if (a->s2s.enabled != b->s2s.enabled || a->s2s.dialback != b->s2s.dialback ||
	    a->s2s.require_valid_certs != b->s2s.require_valid_certs ||
	    str_differs(a->s2s.dialback_secret, b->s2s.dialback_secret) ||
	    str_differs(a->s2s.dns_servers, b->s2s.dns_servers) || a->s2s.nroutes != b->s2s.nroutes)
		return "s2s";
	for (size_t i = 0; i < a->s2s.nroutes; i++)
		if (strcmp(a->s2s.routes[i].domain, b->s2s.routes[i].domain) ||
		    strcmp(a->s2s.routes[i].host, b->s2s.routes[i].host) ||
		    a->s2s.routes[i].port != b->s2s.routes[i].port ||
		    a->s2s.routes[i].direct_tls != b->s2s.routes[i].direct_tls)
			return "s2s.routes";
	if (a->ncomponents != b->ncomponents)
		return "components";
	for (size_t i = 0; i < a->ncomponents; i++)
		if (strcmp(a->components[i].name, b->components[i].name) ||
		    strcmp(a->components[i].secret, b->components[i].secret))
			return "components";
	if (str_differs(a->sm.database, b->sm.database) || str_differs(a->sm.admin_socket, b->sm.admin_socket) ||
	    str_differs(a->sm.listen, b->sm.listen) || str_differs(a->sm.secret, b->sm.secret) ||
	    str_differs(a->sm.shard, b->sm.shard) ||
	    a->sm.version_os != b->sm.version_os || a->sm.mam_retention_days != b->sm.mam_retention_days ||
	    a->sm.mam_default != b->sm.mam_default)
		return "session_server";
	if (str_differs(a->sm.muc_domain, b->sm.muc_domain) || a->sm.muc_history != b->sm.muc_history)
		return "services.muc";
	if (str_differs(a->sm.pubsub_domain, b->sm.pubsub_domain))
		return "services.pubsub";
	if (str_differs(a->upload.domain, b->upload.domain) || str_differs(a->upload.dir, b->upload.dir) ||
	    str_differs(a->upload.url, b->upload.url) || str_differs(a->upload.secret, b->upload.secret) ||
	    a->upload.max_size != b->upload.max_size || a->upload.expire != b->upload.expire ||
	    a->upload.quota != b->upload.quota || a->upload.slot_ttl != b->upload.slot_ttl)
		return "services.upload";
	if (str_differs(a->admin.address, b->admin.address))
		return "admin.address";
	/* The session servers copied them at start. */
	if (a->nadmins != b->nadmins)
		return "admins";
	for (size_t i = 0; i < a->nadmins; i++)
		if (strcmp(a->admins[i], b->admins[i]))
			return "admins";
	/* Resumption ids carry it: sessions detached under the old one could not resume. */
	if (str_differs(a->smacks.edge_id, b->smacks.edge_id))
		return "stream_management.edge_id";
	return NULL;
}

/* b shares a's string (equal when there is no blocker). */
static void take(char **b, char **a)
{
	free(*b);
	*b = *a;
}

void config_adopt(struct config *b, struct config *a)
{
	take(&b->path, &a->path);
	for (size_t i = 0; i < a->nlisteners; i++) {
		take(&b->listeners[i].host, &a->listeners[i].host);
		take(&b->listeners[i].path, &a->listeners[i].path);
	}
	for (size_t i = 0; i < a->ndomains; i++)
		take(&b->domains[i].name, &a->domains[i].name);
	/* backend_address and the shard lists may differ (members.c): each
	 * configuration keeps its own, freed with it even when lent. */
	take(&b->backend_secret, &a->backend_secret);
	take(&b->backend_upstream, &a->backend_upstream);
	take(&b->tls_ca_file, &a->tls_ca_file);
	take(&b->s2s.dialback_secret, &a->s2s.dialback_secret);
	take(&b->s2s.dns_servers, &a->s2s.dns_servers);
	for (size_t i = 0; i < a->s2s.nroutes; i++) {
		take(&b->s2s.routes[i].domain, &a->s2s.routes[i].domain);
		take(&b->s2s.routes[i].host, &a->s2s.routes[i].host);
	}
	for (size_t i = 0; i < a->ncomponents; i++) {
		take(&b->components[i].name, &a->components[i].name);
		take(&b->components[i].secret, &a->components[i].secret);
	}
	take(&b->sm.database, &a->sm.database);
	take(&b->sm.admin_socket, &a->sm.admin_socket);
	take(&b->sm.listen, &a->sm.listen);
	take(&b->sm.secret, &a->sm.secret);
	take(&b->sm.shard, &a->sm.shard);
	take(&b->sm.muc_domain, &a->sm.muc_domain);
	take(&b->sm.pubsub_domain, &a->sm.pubsub_domain);
	take(&b->upload.domain, &a->upload.domain);
	take(&b->upload.dir, &a->upload.dir);
	take(&b->upload.url, &a->upload.url);
	take(&b->upload.secret, &a->upload.secret);
	take(&b->admin.address, &a->admin.address);
	take(&b->smacks.edge_id, &a->smacks.edge_id);
	for (size_t i = 0; i < a->nadmins; i++)
		take(&b->admins[i], &a->admins[i]);
	a->lent = true;
}

void config_unadopt(struct config *b, struct config *a)
{
	a->lent = false;
	b->lent = true;
}

void config_free(struct config *cfg)
{
	if (cfg->lent) {   /* config_adopt: only the reloadable strings are its own */
		for (size_t i = 0; i < cfg->ndomains; i++) {
			free(cfg->domains[i].cert);
			free(cfg->domains[i].key);
		}
		free(cfg->drain.redirect);
		free(cfg->drain.redirect_uri);
		for (size_t i = 0; i < cfg->smacks.npeers; i++) {
			free(cfg->smacks.peers[i].edge_id);
			free(cfg->smacks.peers[i].addr);
		}
		free(cfg->backend_address);
		free(cfg->backend_discover_srv);
		for (size_t i = 0; i < CONFIG_MAX_SHARDS; i++) {
			free(cfg->backend_shards[i]);
			free(cfg->backend_shard_names[i]);
		}
		memset(cfg, 0, sizeof(*cfg));
		return;
	}
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		free(cfg->listeners[i].host);
		free(cfg->listeners[i].path);
	}
	for (size_t i = 0; i < cfg->ndomains; i++) {
		free(cfg->domains[i].name);
		free(cfg->domains[i].cert);
		free(cfg->domains[i].key);
	}
	free(cfg->backend_address);
	free(cfg->backend_discover_srv);
	for (size_t i = 0; i < CONFIG_MAX_SHARDS; i++) {
		free(cfg->backend_shards[i]);
		free(cfg->backend_shard_names[i]);
	}
	free(cfg->backend_secret);
	free(cfg->backend_upstream);
	free(cfg->tls_ca_file);
	free(cfg->s2s.dialback_secret);
	free(cfg->s2s.dns_servers);
	for (size_t i = 0; i < cfg->s2s.nroutes; i++) {
		free(cfg->s2s.routes[i].domain);
		free(cfg->s2s.routes[i].host);
	}
	for (size_t i = 0; i < cfg->ncomponents; i++) {
		free(cfg->components[i].name);
		free(cfg->components[i].secret);
	}
	free(cfg->admin.address);
	for (size_t i = 0; i < cfg->nadmins; i++)
		free(cfg->admins[i]);
	free(cfg->smacks.edge_id);
	for (size_t i = 0; i < cfg->smacks.npeers; i++) {
		free(cfg->smacks.peers[i].edge_id);
		free(cfg->smacks.peers[i].addr);
	}
	free(cfg->drain.redirect);
	free(cfg->drain.redirect_uri);
	free(cfg->sm.database);
	free(cfg->sm.admin_socket);
	free(cfg->sm.listen);
	free(cfg->sm.secret);
	free(cfg->sm.shard);
	free(cfg->sm.muc_domain);
	free(cfg->sm.pubsub_domain);
	free(cfg->upload.domain);
	free(cfg->upload.dir);
	free(cfg->upload.url);
	free(cfg->upload.secret);
	free(cfg->path);
	memset(cfg, 0, sizeof(*cfg));
}
