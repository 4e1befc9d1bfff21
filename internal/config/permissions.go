package config

// The Microsoft Graph application permissions calstatus asks for. GraphPermissions is the one
// list the consent page, the self-check and the deployment (infra/modules/app-registration.bicep,
// checked by devtools/bicepcheck) take them from.
const (
	// PermissionCalendars reads free/busy (getSchedule) and calendar items: always.
	PermissionCalendars = "Calendars.ReadBasic.All"
	// PermissionPresence reads Teams presence (calls, presentations) and the automatic-reply
	// text (POST /communications/getPresencesByUserId).
	PermissionPresence = "Presence.Read.All"
	// PermissionUserLookup finds the object ids presence is keyed by
	// (GET /users?$filter=userPrincipalName in (…)). Not User.ReadBasic.All: Microsoft's "List
	// users" page accepts it for delegated access only (application: User.Read.All and higher),
	// and app-only GET /users with it alone is answered 403 Authorization_RequestDenied.
	PermissionUserLookup = "User.Read.All"
)

// GraphAppRoleIDs are the permissions' app role ids on Microsoft Graph's service principal (the
// same in every tenant), which the deployment's requiredResourceAccess and app role assignments
// name. Calendars.ReadBasic.All and User.Read.All: Microsoft Graph permissions reference, "All
// permissions and IDs" (microsoft-graph-docs-contrib concepts/includes/permissions-ids.md);
// Presence.Read.All (application, since December 2023, after that table was last generated): the
// Graph service principal's appRoles as mirrored by graphpermissions.merill.net.
var GraphAppRoleIDs = map[string]string{
	PermissionCalendars:  "8ba4a692-bc31-4128-9094-475872af8a53",
	PermissionPresence:   "a70e0c2d-e793-494c-94c4-118fa0a67f42",
	PermissionUserLookup: "df021288-bdef-4463-88db-98f22de89214",
}

// ReadsPresence reports whether a setting needs Teams presence (PRESENCE_SYNC or
// AUTOMATIC_REPLIES_SYNC): both read it from the same call, with the same permissions.
func (c Config) ReadsPresence() bool { return c.PresenceSync || c.AutomaticRepliesSync }

// GraphPermissions are the application permissions these settings need, least privilege:
// Calendars.ReadBasic.All, and Presence.Read.All with User.Read.All only when presence is read.
func (c Config) GraphPermissions() []string {
	if c.ReadsPresence() {
		return []string{PermissionCalendars, PermissionPresence, PermissionUserLookup}
	}
	return []string{PermissionCalendars}
}
